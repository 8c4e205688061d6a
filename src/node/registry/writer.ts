import { LimitError, ValidationError } from '../../protocol/errors.js'
import { componentLog, type LoggerComponents } from '../logger.js'
import { digestOf, readLimited } from './body.js'
import { DigestMismatchError, RegistryPushError, RegistryUnreachableError } from './errors.js'
import { MANIFEST_ACCEPT, OCI_INDEX } from './media-types.js'
import type { ImageReference } from './reference.js'
import { isDigest } from './reference.js'
import { transportFor } from './transport.js'
import type { RegistryAccessInit } from './transport.js'

/** A content descriptor (OCI image spec), as indexes and referrers lists carry them. */
export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  artifactType?: string
  annotations?: Record<string, string>
}

/** A manifest as stored: its exact bytes, their digest, and the parsed JSON. */
export interface RawManifest {
  bytes: Uint8Array
  digest: string
  mediaType: string
  json: Record<string, unknown>
}

export interface RegistryWriterInit extends RegistryAccessInit {
  /** Largest manifest or index read. Default 4 MiB. */
  maxManifestBytes?: number
  /** Most referrers read for one subject. Default 1000. */
  maxReferrers?: number
}

/**
 * Reads and writes the raw objects of a repository over the OCI distribution API: blobs,
 * manifests by tag or digest, and the referrers of a digest. Everything read is checked
 * against its digest; everything written is addressed by the digest of its bytes.
 */
export interface RegistryWriter {
  /** The manifest or index a tag or digest names, or undefined when the registry has none. */
  getManifest: (ref: ImageReference, target: string) => Promise<RawManifest | undefined>
  /** A blob, checked against its digest, of at most `limit` bytes. */
  getBlob: (ref: ImageReference, digest: string, limit: number) => Promise<Uint8Array>
  /** Uploads a blob unless the registry has it; returns its digest. */
  pushBlob: (ref: ImageReference, bytes: Uint8Array) => Promise<string>
  /** PUTs a manifest under a tag or its own digest; returns the digest of the bytes. */
  putManifest: (ref: ImageReference, target: string, bytes: Uint8Array, mediaType: string) => Promise<string>
  /**
   * The referrers of `digest` through the referrers API, or undefined when the registry
   * has no such API (it answers 404): then the referrers tag schema applies.
   */
  referrers: (ref: ImageReference, digest: string) => Promise<Descriptor[] | undefined>
}

const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
const DEFAULT_MAX_REFERRERS = 1000

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The descriptors of an index's `manifests`, malformed entries refused by name. */
export function indexDescriptors (json: Record<string, unknown>, field: string, max: number): Descriptor[] {
  if (!Array.isArray(json.manifests)) throw new ValidationError(`${field}.manifests`, 'expected an array')
  if (json.manifests.length > max) throw new LimitError(`${field}.manifests`, max, json.manifests.length)
  return json.manifests.map((m: unknown, i): Descriptor => {
    const at = `${field}.manifests[${i}]`
    if (!isObject(m) || typeof m.digest !== 'string' || !isDigest(m.digest)) throw new ValidationError(at, 'descriptor without a valid digest')
    if (typeof m.mediaType !== 'string') throw new ValidationError(`${at}.mediaType`, 'expected a string')
    if (typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size < 0) throw new ValidationError(`${at}.size`, 'expected a non-negative integer')
    const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.size }
    if (typeof m.artifactType === 'string') d.artifactType = m.artifactType
    if (isObject(m.annotations)) {
      d.annotations = Object.fromEntries(Object.entries(m.annotations).filter((kv): kv is [string, string] => typeof kv[1] === 'string'))
    }
    return d
  })
}

export function createRegistryWriter (components: LoggerComponents = {}, init: RegistryWriterInit = {}): RegistryWriter {
  const log = componentLog(components.logger, 'registry-writer')
  const maxManifestBytes = init.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES
  const maxReferrers = init.maxReferrers ?? DEFAULT_MAX_REFERRERS
  const transport = transportFor(init, log)

  async function refused (ref: ImageReference, res: Response, what: string): Promise<never> {
    const text = (await res.text().catch(() => '')).slice(0, 300).trim()
    throw new RegistryPushError(ref.canonical, `HTTP ${res.status} on ${what}${text !== '' ? `: ${text}` : ''}`)
  }

  function parseJson (ref: ImageReference, bytes: Uint8Array, what: string): Record<string, unknown> {
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    } catch {
      throw new ValidationError('manifest', `${ref.canonical}: ${what} is not JSON`)
    }
    if (!isObject(json)) throw new ValidationError('manifest', `${ref.canonical}: ${what} is not a JSON object`)
    return json
  }

  return {
    async getManifest (ref, target) {
      const res = await transport.request(ref, 'GET', `manifests/${target}`, MANIFEST_ACCEPT)
      if (res.status === 404) {
        await res.body?.cancel().catch(() => {})
        return undefined
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {})
        throw new RegistryUnreachableError(ref.canonical, `unexpected HTTP ${res.status} on GET manifests/${target}`)
      }
      const bytes = await readLimited(res, maxManifestBytes, 'manifest')
      const header = res.headers.get('docker-content-digest')
      const digest = digestOf(bytes, isDigest(target) ? target : header ?? undefined)
      if (isDigest(target) && digest !== target) throw new DigestMismatchError(ref.canonical, `manifest ${target}`, target, digest)
      if (header != null && isDigest(header) && digestOf(bytes, header) !== header) {
        throw new DigestMismatchError(ref.canonical, `manifest ${target} (Docker-Content-Digest against content)`, header, digestOf(bytes, header))
      }
      const json = parseJson(ref, bytes, `manifest ${target}`)
      const contentType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? ''
      const mediaType = typeof json.mediaType === 'string' && json.mediaType !== '' ? json.mediaType : contentType
      return { bytes, digest, mediaType, json }
    },

    async getBlob (ref, digest, limit) {
      const res = await transport.request(ref, 'GET', `blobs/${digest}`)
      if (!res.ok) {
        await res.body?.cancel().catch(() => {})
        throw new RegistryUnreachableError(ref.canonical, `HTTP ${res.status} on GET blobs/${digest}`)
      }
      const bytes = await readLimited(res, limit, 'blob')
      const actual = digestOf(bytes, digest)
      if (actual !== digest) throw new DigestMismatchError(ref.canonical, 'blob', digest, actual)
      return bytes
    },

    async pushBlob (ref, bytes) {
      const digest = digestOf(bytes)
      const head = await transport.request(ref, 'HEAD', `blobs/${digest}`, undefined, { push: true })
      await head.body?.cancel().catch(() => {})
      if (head.ok) return digest
      const start = await transport.request(ref, 'POST', 'blobs/uploads/', undefined, { push: true })
      const location = start.headers.get('location')
      if (start.status !== 202 || location == null) await refused(ref, start, 'POST blobs/uploads/')
      await start.body?.cancel().catch(() => {})
      const upload = new URL(location!, transport.baseUrl(ref))
      upload.searchParams.set('digest', digest)
      const put = await transport.request(ref, 'PUT', '', undefined, { push: true, url: upload.toString(), body: bytes, contentType: 'application/octet-stream' })
      if (put.status !== 201) await refused(ref, put, `PUT blob ${digest}`)
      await put.body?.cancel().catch(() => {})
      log.debug({ reference: ref.canonical, digest, size: bytes.byteLength }, 'blob pushed')
      return digest
    },

    async putManifest (ref, target, bytes, mediaType) {
      if (bytes.byteLength > maxManifestBytes) throw new LimitError('manifest', maxManifestBytes, bytes.byteLength)
      const digest = digestOf(bytes)
      const res = await transport.request(ref, 'PUT', `manifests/${target}`, undefined, { push: true, body: bytes, contentType: mediaType })
      if (res.status !== 201) await refused(ref, res, `PUT manifests/${target}`)
      await res.body?.cancel().catch(() => {})
      const header = res.headers.get('docker-content-digest')
      if (header != null && isDigest(header) && header !== digest) throw new DigestMismatchError(ref.canonical, `manifest ${target} as stored`, digest, header)
      log.debug({ reference: ref.canonical, target, digest }, 'manifest pushed')
      return digest
    },

    async referrers (ref, digest) {
      const res = await transport.request(ref, 'GET', `referrers/${digest}`, OCI_INDEX)
      // No referrers API: 404 (distribution 2.x), or a registry that does not route the path.
      if (res.status === 404 || res.status === 400 || res.status === 405) {
        await res.body?.cancel().catch(() => {})
        return undefined
      }
      if (!res.ok) {
        await res.body?.cancel().catch(() => {})
        throw new RegistryUnreachableError(ref.canonical, `unexpected HTTP ${res.status} on GET referrers/${digest}`)
      }
      const json = parseJson(ref, await readLimited(res, maxManifestBytes, 'referrers'), `referrers of ${digest}`)
      return indexDescriptors(json, 'referrers', maxReferrers)
    }
  }
}
