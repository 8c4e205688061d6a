import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import type { Digest, ImageResult } from '../../protocol/types.js'
import { LIMITS } from '../../protocol/limits.js'
import { OciArchiveError } from './errors.js'

export interface OciDescriptor {
  mediaType: string
  digest: Digest
  size: number
  platform?: { os: string, architecture: string, variant?: string }
  annotations?: Record<string, string>
}

export interface OciLayer {
  /** Compressed blob digest (what the manifest names). */
  digest: Digest
  mediaType: string
  size: number
  /** Uncompressed digest from the config's `rootfs.diff_ids`. */
  diffId: Digest
  /** `created_by` of the history entry that made this layer (its Dockerfile step). */
  createdBy?: string
}

export interface OciImage {
  /** `linux/amd64`, `linux/arm64/v8` */
  platform: string
  manifestDigest: Digest
  manifestMediaType: string
  configDigest: Digest
  /** The parsed image config. */
  config: Record<string, unknown>
  diffIds: Digest[]
  layers: OciLayer[]
}

export interface OciArchiveInfo {
  /** sha256 of the index.json bytes. */
  indexDigest: Digest
  index: { manifests: OciDescriptor[] }
  images: OciImage[]
}

/** JSON blobs (index, manifests, config) are small; anything larger is a layer and is only hashed. */
const MAX_JSON_BLOB = 4 * 1024 * 1024
const MAX_JSON_TOTAL = 64 * 1024 * 1024
const MAX_ENTRIES = 100_000
const BLOB_PATH = /^(?:\.\/)?blobs\/sha256\/([0-9a-f]{64})$/

interface Scan {
  indexJson?: Buffer
  blobs: Map<string, Buffer>
  sizes: Map<string, number>
}

/** Streams the tarball once: keeps small blobs, verifies every blob's digest against its name. */
async function scanArchive (tarPath: string): Promise<Scan> {
  const scan: Scan = { blobs: new Map(), sizes: new Map() }
  const extract = tar.extract()
  let kept = 0
  let entries = 0
  extract.on('entry', (header, stream, next) => {
    if (++entries > MAX_ENTRIES) { extract.destroy(new OciArchiveError(`${tarPath}: more than ${MAX_ENTRIES} entries`)); return }
    const name = header.name
    const blob = BLOB_PATH.exec(name)?.[1]
    const wanted = name === 'index.json' || name === './index.json' || blob != null
    if (!wanted || header.type !== 'file') { stream.on('end', next); stream.resume(); return }
    const hash = createHash('sha256')
    const keep = (header.size ?? 0) <= MAX_JSON_BLOB && kept + (header.size ?? 0) <= MAX_JSON_TOTAL
    const chunks: Buffer[] = []
    let size = 0
    stream.on('data', (data: unknown) => {
      const chunk = data as Buffer
      size += chunk.length
      hash.update(chunk)
      if (keep) chunks.push(chunk)
    })
    stream.on('end', () => {
      if (blob == null) {
        scan.indexJson = Buffer.concat(chunks)
      } else {
        const actual = hash.digest('hex')
        if (actual !== blob) { extract.destroy(new OciArchiveError(`${tarPath}: blob ${blob} has digest ${actual}`)); return }
        scan.sizes.set(blob, size)
        if (keep) { scan.blobs.set(blob, Buffer.concat(chunks)); kept += size }
      }
      next()
    })
  })
  try {
    await pipeline(createReadStream(tarPath), extract)
  } catch (err) {
    if (err instanceof OciArchiveError) throw err
    throw new OciArchiveError(`${tarPath}: not a readable tar archive: ${(err as Error).message}`)
  }
  return scan
}

function parseJson (buf: Buffer | undefined, what: string): Record<string, unknown> {
  if (buf == null) throw new OciArchiveError(`${what} is missing`)
  try {
    const v = JSON.parse(buf.toString('utf8')) as unknown
    if (v == null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object')
    return v as Record<string, unknown>
  } catch (err) {
    throw new OciArchiveError(`${what} is not a JSON object: ${(err as Error).message}`)
  }
}

function hexOf (digest: unknown, what: string): string {
  const m = typeof digest === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(digest) : null
  if (m?.[1] == null) throw new OciArchiveError(`${what}: bad digest ${JSON.stringify(digest)}`)
  return m[1]
}

function descriptors (value: unknown, what: string): OciDescriptor[] {
  if (!Array.isArray(value)) throw new OciArchiveError(`${what} is not an array`)
  return value.map((d, i) => {
    const o = d as Record<string, unknown>
    hexOf(o.digest, `${what}[${i}]`)
    return o as unknown as OciDescriptor
  })
}

export function platformString (p: OciDescriptor['platform'] | { os?: unknown, architecture?: unknown, variant?: unknown } | undefined): string {
  if (p == null) return 'unknown'
  return [p.os, p.architecture, p.variant].filter(x => typeof x === 'string' && x !== '').join('/')
}

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'])

/**
 * Reads an OCI image layout tarball (`--output type=oci`) without loading layers: digests of
 * the index, each platform's manifest and config, the diffIDs, and the step behind each layer.
 */
export async function readOciArchive (tarPath: string): Promise<OciArchiveInfo> {
  const scan = await scanArchive(tarPath)
  if (scan.indexJson == null) throw new OciArchiveError(`${tarPath}: no index.json (not an OCI image layout)`)
  const indexDigest = `sha256:${createHash('sha256').update(scan.indexJson).digest('hex')}`
  const index = parseJson(scan.indexJson, `${tarPath}: index.json`)
  const top = descriptors(index.manifests, `${tarPath}: index.json manifests`)
  const images: OciImage[] = []
  const visit = (desc: OciDescriptor, depth: number): void => {
    const hex = hexOf(desc.digest, 'manifest')
    const body = parseJson(scan.blobs.get(hex), `${tarPath}: blob ${desc.digest}`)
    const mediaType = String(body.mediaType ?? desc.mediaType)
    if (INDEX_TYPES.has(mediaType)) {
      if (depth > 2) throw new OciArchiveError(`${tarPath}: indexes nested too deep`)
      for (const d of descriptors(body.manifests, `${desc.digest} manifests`)) visit(d, depth + 1)
      return
    }
    const configDesc = body.config as OciDescriptor | undefined
    const configHex = hexOf(configDesc?.digest, `${desc.digest} config`)
    const config = parseJson(scan.blobs.get(configHex), `${tarPath}: config ${configDesc?.digest}`)
    // BuildKit attestation manifests (unknown/unknown) are not images.
    if (desc.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return
    const rootfs = config.rootfs as { diff_ids?: unknown } | undefined
    const diffIds = Array.isArray(rootfs?.diff_ids) ? rootfs.diff_ids.map(String) : []
    const history = Array.isArray(config.history) ? config.history as Array<{ created_by?: string, empty_layer?: boolean }> : []
    const steps = history.filter(h => h.empty_layer !== true).map(h => h.created_by ?? '')
    const layerDescs = descriptors(body.layers ?? [], `${desc.digest} layers`)
    if (layerDescs.length !== diffIds.length) throw new OciArchiveError(`${tarPath}: manifest ${desc.digest} has ${layerDescs.length} layers but its config lists ${diffIds.length} diff_ids`)
    const layers = layerDescs.map((l, i): OciLayer => {
      const createdBy = steps.length === diffIds.length ? steps[i] : undefined
      return { digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: diffIds[i] ?? '', ...(createdBy != null ? { createdBy } : {}) }
    })
    images.push({
      platform: desc.platform != null ? platformString(desc.platform) : platformString(config as { os?: unknown, architecture?: unknown, variant?: unknown }),
      manifestDigest: desc.digest,
      manifestMediaType: mediaType,
      configDigest: configDesc?.digest ?? '',
      config,
      diffIds,
      layers
    })
  }
  for (const d of top) visit(d, 0)
  if (images.length === 0) throw new OciArchiveError(`${tarPath}: index.json names no image manifest`)
  return { indexDigest, index: { manifests: top }, images }
}

/** The digests a claim carries, for one platform of the archive (the only one when omitted). */
export function imageResultOf (info: OciArchiveInfo, platform?: string): ImageResult {
  const image = platform == null ? info.images[0] : info.images.find(i => i.platform === platform || i.platform.startsWith(`${platform}/`))
  if (image == null) throw new OciArchiveError(`the archive has no image for ${platform ?? 'any platform'} (it has ${info.images.map(i => i.platform).join(', ')})`)
  const steps = boundSteps(image.layers.map(l => l.createdBy))
  return {
    indexDigest: info.indexDigest,
    manifestDigest: image.manifestDigest,
    configDigest: image.configDigest,
    diffIds: image.diffIds,
    ...(steps.every((s): s is string => s != null) ? { layerSteps: steps } : {})
  }
}

/** Room for layer steps in one claim: long `created_by` lines are shortened to fit the envelope. */
const STEPS_BUDGET = 96 * 1024

function boundSteps (steps: Array<string | undefined>): Array<string | undefined> {
  const total = steps.reduce((n, s) => n + (s?.length ?? 0), 0)
  const each = Math.min(LIMITS.stepLength, total > STEPS_BUDGET ? Math.max(64, Math.floor(STEPS_BUDGET / Math.max(1, steps.length))) : LIMITS.stepLength)
  return steps.map(s => s != null && s.length > each ? `${s.slice(0, each - 3)}...` : s)
}

/** Streams one blob of the archive into `sink` (used by the diff for layers). */
export async function streamBlob (tarPath: string, digest: Digest, sink: (entry: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  const hex = hexOf(digest, 'blob')
  const extract = tar.extract()
  let found = false
  extract.on('entry', (header, stream, next) => {
    if (BLOB_PATH.exec(header.name)?.[1] === hex && !found) {
      found = true
      sink(stream as unknown as AsyncIterable<Buffer>).then(() => { stream.resume(); next() }, err => extract.destroy(err as Error))
    } else {
      stream.on('end', next)
      stream.resume()
    }
  })
  // Reads of 1 MiB rather than 64 KiB: a layer of hundreds of MiB in fewer chunks.
  await pipeline(createReadStream(tarPath, { highWaterMark: 1024 * 1024 }), extract).catch(err => {
    throw err instanceof OciArchiveError ? err : new OciArchiveError(`${tarPath}: ${(err as Error).message}`)
  })
  if (!found) throw new OciArchiveError(`${tarPath}: no blob ${digest}`)
}
