import { LimitError, ValidationError } from '../../protocol/errors.js'
import { componentLog, type LoggerComponents } from '../logger.js'
import { digestOf, readLimited } from './body.js'
import { DigestMismatchError, ManifestNotFoundError, PlatformNotFoundError, RegistryUnreachableError } from './errors.js'
import { INDEX_TYPES, MANIFEST_ACCEPT, MANIFEST_TYPES } from './media-types.js'
import { formatPlatform, imageEntries, parsePlatform, platformMatches, selectPlatform } from './platform.js'
import type { IndexEntry, Platform } from './platform.js'
import { isDigest, parseReference } from './reference.js'
import type { ImageReference } from './reference.js'
import { transportFor } from './transport.js'
import type { PublishedImage, RegistryClient, RegistryClientInit } from './types.js'

const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024
const DEFAULT_MAX_CONFIG_BYTES = 8 * 1024 * 1024
const DEFAULT_MAX_LAYERS = 1000
/** Entries of one index; Neko publishes a handful, real indexes stay well under this. */
const MAX_INDEX_ENTRIES = 1000

interface Fetched {
  bytes: Uint8Array
  digest: string
  mediaType: string
  json: Record<string, unknown>
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function descriptorDigest (v: unknown, field: string): string {
  if (!isObject(v) || typeof v.digest !== 'string' || !isDigest(v.digest)) {
    throw new ValidationError(field, 'descriptor without a valid digest')
  }
  return v.digest
}

function descriptorSize (v: Record<string, unknown>): number | undefined {
  return typeof v.size === 'number' && Number.isSafeInteger(v.size) && v.size >= 0 ? v.size : undefined
}

/**
 * Reads what a registry publishes for a tag or digest over the OCI distribution API,
 * without pulling layers: index, per-platform manifest and config, each checked against
 * its digest. Anonymous bearer tokens are fetched and cached when the registry asks.
 */
export function createRegistryClient (components: LoggerComponents = {}, init: RegistryClientInit = {}): RegistryClient {
  const log = componentLog(components.logger, 'registry')
  const maxManifestBytes = init.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES
  const maxConfigBytes = init.maxConfigBytes ?? DEFAULT_MAX_CONFIG_BYTES
  const maxLayers = init.maxLayers ?? DEFAULT_MAX_LAYERS
  const transport = transportFor(init, log)

  /**
   * GETs a manifest by tag or digest. The digest is the hash of the exact bytes; a
   * Docker-Content-Digest header must agree with it, and so must `expected` (the digest
   * asked for, or the one an index entry named).
   */
  async function getManifest (ref: ImageReference, target: string, expected?: string, declaredSize?: number): Promise<Fetched> {
    if (declaredSize != null && declaredSize > maxManifestBytes) throw new LimitError('manifest', maxManifestBytes, declaredSize)
    const res = await transport.request(ref, 'GET', `manifests/${target}`, MANIFEST_ACCEPT)
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {})
      throw new ManifestNotFoundError(ref.canonical, `manifest ${target} unknown to ${ref.registry}`)
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      throw new RegistryUnreachableError(ref.canonical, `unexpected HTTP ${res.status} on GET manifests/${target}`)
    }
    const bytes = await readLimited(res, maxManifestBytes, 'manifest')
    const header = res.headers.get('docker-content-digest')
    const digest = digestOf(bytes, expected ?? header ?? undefined)
    if (header != null && header !== '') {
      const actual = digestOf(bytes, header)
      if (actual !== header) throw new DigestMismatchError(ref.canonical, `manifest ${target} (Docker-Content-Digest against content)`, header, actual)
    }
    if (expected != null && digest !== expected) throw new DigestMismatchError(ref.canonical, `manifest ${target}`, expected, digest)

    let json: unknown
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    } catch {
      throw new ValidationError('manifest', `${ref.canonical}: manifest ${target} is not JSON`)
    }
    if (!isObject(json)) throw new ValidationError('manifest', `${ref.canonical}: manifest ${target} is not a JSON object`)
    // The body's mediaType is what was hashed; the Content-Type header is only a fallback.
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? ''
    const mediaType = typeof json.mediaType === 'string' && json.mediaType !== '' ? json.mediaType : contentType
    return { bytes, digest, mediaType, json }
  }

  async function getConfig (ref: ImageReference, configDigest: string, declaredSize: number | undefined): Promise<Record<string, unknown>> {
    if (declaredSize != null && declaredSize > maxConfigBytes) throw new LimitError('config', maxConfigBytes, declaredSize)
    const res = await transport.request(ref, 'GET', `blobs/${configDigest}`)
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {})
      throw new ManifestNotFoundError(ref.canonical, `config blob ${configDigest} unknown to ${ref.registry}`)
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      throw new RegistryUnreachableError(ref.canonical, `unexpected HTTP ${res.status} on GET blobs/${configDigest}`)
    }
    const bytes = await readLimited(res, maxConfigBytes, 'config')
    const actual = digestOf(bytes, configDigest)
    if (actual !== configDigest) throw new DigestMismatchError(ref.canonical, 'config blob', configDigest, actual)
    let json: unknown
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
    } catch {
      throw new ValidationError('config', `${ref.canonical}: config ${configDigest} is not JSON`)
    }
    if (!isObject(json)) throw new ValidationError('config', `${ref.canonical}: config ${configDigest} is not a JSON object`)
    return json
  }

  function indexEntries (ref: ImageReference, index: Record<string, unknown>): IndexEntry[] {
    if (!Array.isArray(index.manifests)) throw new ValidationError('index.manifests', `${ref.canonical}: index without a manifests array`)
    if (index.manifests.length > MAX_INDEX_ENTRIES) throw new LimitError('index.manifests', MAX_INDEX_ENTRIES, index.manifests.length)
    return index.manifests.map((m: unknown, i): IndexEntry => {
      const field = `index.manifests[${i}]`
      const digest = descriptorDigest(m, field)
      const d = m as Record<string, unknown>
      const entry: IndexEntry = { digest }
      if (typeof d.mediaType === 'string') entry.mediaType = d.mediaType
      const size = descriptorSize(d)
      if (size != null) entry.size = size
      if (isObject(d.platform) && typeof d.platform.os === 'string' && typeof d.platform.architecture === 'string') {
        entry.platform = { os: d.platform.os, architecture: d.platform.architecture }
        if (typeof d.platform.variant === 'string' && d.platform.variant !== '') entry.platform.variant = d.platform.variant
      }
      if (isObject(d.annotations)) {
        entry.annotations = Object.fromEntries(Object.entries(d.annotations).filter((kv): kv is [string, string] => typeof kv[1] === 'string'))
      }
      return entry
    })
  }

  /**
   * HEAD of a manifest: the registry's digest for it (undefined when it sends none, or
   * does not allow HEAD). Not found is final; anything else is left to the GET.
   */
  async function headDigest (ref: ImageReference, target: string): Promise<string | undefined> {
    const res = await transport.request(ref, 'HEAD', `manifests/${target}`, MANIFEST_ACCEPT)
    await res.body?.cancel().catch(() => {})
    if (res.status === 404) throw new ManifestNotFoundError(ref.canonical, `manifest ${target} unknown to ${ref.registry}`)
    if (!res.ok) return undefined
    const header = res.headers.get('docker-content-digest')
    return header != null && isDigest(header) ? header : undefined
  }

  async function resolve (refString: string, platformString?: string): Promise<PublishedImage> {
    const ref = parseReference(refString)
    const want: Platform | undefined = platformString != null ? parsePlatform(platformString) : undefined
    const target = ref.digest ?? ref.tag ?? 'latest'
    // HEAD first, as Docker does: it answers "unknown tag" without a GET, and its digest
    // must be the one the GET's bytes hash to. A disagreement means the tag moved between
    // the two requests or something in between rewrites answers; either way nothing is
    // known about this reference.
    const announced = await headDigest(ref, target)
    const top = await getManifest(ref, target, ref.digest)
    if (announced != null && announced !== digestOf(top.bytes, announced)) {
      throw new DigestMismatchError(ref.canonical, `manifest ${target} (HEAD against GET)`, announced, digestOf(top.bytes, announced))
    }

    let indexDigest: string | undefined
    let manifest = top
    let platform: string | undefined
    if (INDEX_TYPES.includes(top.mediaType) || (top.mediaType === '' && Array.isArray(top.json.manifests))) {
      indexDigest = top.digest
      const entries = indexEntries(ref, top.json)
      const images = imageEntries(entries)
      let chosen: IndexEntry & { platform: Platform } | undefined
      if (want != null) {
        chosen = selectPlatform(entries, want)
      } else if (images.length === 1) {
        chosen = images[0]
      }
      if (chosen == null) {
        throw new PlatformNotFoundError(ref.canonical, want != null ? formatPlatform(want) : '(none given)', images.map(e => formatPlatform(e.platform)))
      }
      platform = formatPlatform(chosen.platform)
      manifest = await getManifest(ref, chosen.digest, chosen.digest, chosen.size)
      log.debug({ reference: ref.canonical, platform, manifest: chosen.digest }, 'platform manifest chosen')
    }
    if (!MANIFEST_TYPES.includes(manifest.mediaType)) {
      throw new ValidationError('manifest.mediaType', `${ref.canonical}: unsupported manifest media type ${JSON.stringify(manifest.mediaType)}`)
    }

    const configDesc = manifest.json.config
    const configDigest = descriptorDigest(configDesc, 'manifest.config')
    const layers = manifest.json.layers
    if (Array.isArray(layers) && layers.length > maxLayers) throw new LimitError('manifest.layers', maxLayers, layers.length)
    const config = await getConfig(ref, configDigest, descriptorSize(configDesc as Record<string, unknown>))

    const rootfs = config.rootfs
    if (!isObject(rootfs) || !Array.isArray(rootfs.diff_ids)) throw new ValidationError('config.rootfs.diff_ids', `${ref.canonical}: config ${configDigest} has no rootfs.diff_ids`)
    if (rootfs.diff_ids.length > maxLayers) throw new LimitError('config.rootfs.diff_ids', maxLayers, rootfs.diff_ids.length)
    const diffIds = rootfs.diff_ids.map((d: unknown, i) => {
      if (typeof d !== 'string' || !isDigest(d)) throw new ValidationError(`config.rootfs.diff_ids[${i}]`, `${ref.canonical}: not a digest`)
      return d
    })

    // A single-image reference still has to be the platform asked for.
    if (typeof config.os === 'string' && typeof config.architecture === 'string') {
      const have: Platform = { os: config.os, architecture: config.architecture }
      if (typeof config.variant === 'string' && config.variant !== '') have.variant = config.variant
      if (indexDigest == null) {
        if (want != null && !platformMatches(want, have)) throw new PlatformNotFoundError(ref.canonical, formatPlatform(want), [formatPlatform(have)])
        platform = formatPlatform(have)
      }
    }

    const published: PublishedImage = {
      reference: ref.canonical,
      manifestDigest: manifest.digest,
      configDigest,
      diffIds,
      mediaType: manifest.mediaType
    }
    if (indexDigest != null) published.indexDigest = indexDigest
    if (platform != null) published.platform = platform
    return published
  }

  async function manifestDigest (refString: string): Promise<string> {
    const ref = parseReference(refString)
    const target = ref.digest ?? ref.tag ?? 'latest'
    const header = await headDigest(ref, target)
    if (header != null) {
      if (ref.digest != null && header !== ref.digest) throw new DigestMismatchError(ref.canonical, 'manifest (Docker-Content-Digest)', ref.digest, header)
      return header
    }
    // No usable header: the digest is the hash of the bytes themselves.
    return (await getManifest(ref, target, ref.digest)).digest
  }

  return { resolve, manifestDigest }
}
