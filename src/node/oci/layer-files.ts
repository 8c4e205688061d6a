import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import type { Transform } from 'node:stream'
import { OciArchiveError } from './errors.js'
import { streamBlob } from './archive.js'

/** One entry of a layer tarball, content reduced to its digest. */
export interface LayerFile {
  path: string
  type: string
  size: number
  mode: number
  uid: number
  gid: number
  /** Unix seconds */
  mtime: number
  linkname?: string
  sha256?: string
  /** Position in the layer tarball. */
  order: number
}

/** A layer with more entries than this is compared on its first entries only. */
const MAX_LAYER_ENTRIES = 500_000

/** Leading bytes kept of every regular file: enough for the gzip, zip, .pyc and fontconfig headers. */
export const HEAD_BYTES = 32

export interface ListOptions {
  /** Keep the first HEAD_BYTES bytes of every regular file. */
  heads?: boolean
  /** Keep the whole content of these paths, each up to `maxCapture` bytes (longer ones are cut). */
  capture?: ReadonlySet<string>
  maxCapture?: number
  /**
   * Also keep small files whose first bytes look like text, up to `budget` bytes in all, so
   * that a text diff rarely needs a second read of the layer; and JSON documents (first byte
   * `{` or `[`) up to `maxJsonBytes` each, from a budget of their own, `jsonBudget`.
   */
  speculative?: { maxFileBytes: number, budget: number, maxJsonBytes?: number, jsonBudget?: number }
}

export interface LayerListing {
  files: Map<string, LayerFile>
  truncated: boolean
  heads: Map<string, Buffer>
  captured: Map<string, { content: Buffer, complete: boolean }>
}

/** Output chunk of the decompressor: larger than zlib's 16 KiB, so that a layer of hundreds of MiB takes fewer callbacks and buffers. */
const UNZIP_CHUNK_BYTES = 256 * 1024

function decompressor (mediaType: string): Transform | undefined {
  if (/gzip$/.test(mediaType)) return zlib.createGunzip({ chunkSize: UNZIP_CHUNK_BYTES })
  if (/zstd$/.test(mediaType)) {
    const z = zlib as unknown as { createZstdDecompress?: (opts?: { chunkSize?: number }) => Transform }
    if (z.createZstdDecompress == null) throw new OciArchiveError(`layers of type ${mediaType} need a Node.js with zstd support`)
    return z.createZstdDecompress({ chunkSize: UNZIP_CHUNK_BYTES })
  }
  return undefined
}

/** No control bytes besides whitespace: cheap test on a file's first bytes. */
function plainText (head: Buffer): boolean {
  for (const c of head) if ((c < 32 && c !== 9 && c !== 10 && c !== 12 && c !== 13) || c === 127) return false
  return true
}

/** A JSON document's first bytes: `{` or `[` after any whitespace. */
export function jsonStart (head: Buffer | undefined): boolean {
  return head != null && /^\s*[[{]/.test(head.toString('latin1'))
}

/** Streams one layer blob out of an OCI tarball and lists its entries (content hashed, never held). */
export async function listLayerFiles (archive: string, digest: string, mediaType: string, opts: ListOptions = {}): Promise<LayerListing> {
  const files = new Map<string, LayerFile>()
  const heads = new Map<string, Buffer>()
  const captured = new Map<string, { content: Buffer, complete: boolean }>()
  const maxCapture = opts.maxCapture ?? 256 * 1024
  let truncated = false
  let budget = opts.speculative?.budget ?? 0
  let jsonBudget = opts.speculative?.jsonBudget ?? 0
  await streamBlob(archive, digest, async blob => {
    const extract = tar.extract()
    let order = 0
    extract.on('entry', (header, stream, next) => {
      if (order >= MAX_LAYER_ENTRIES) { truncated = true; stream.on('end', () => next()); stream.resume(); return }
      const regular = header.type === 'file' || header.type === 'contiguous-file'
      const hash = regular ? createHash('sha256') : undefined
      const path = header.name.replace(/^\.?\//, '').replace(/\/$/, '')
      let head: Buffer | undefined = regular && opts.heads === true ? Buffer.alloc(0) : undefined
      const size = header.size ?? 0
      const spec = opts.speculative
      const guess = regular && spec != null && size <= spec.maxFileBytes && size <= budget
      // Too large for the text budget: kept as a JSON document until its first bytes say otherwise.
      const guessJson = regular && spec != null && !guess && size <= (spec.maxJsonBytes ?? 0) && size <= jsonBudget
      if (guess) budget -= size
      if (guessJson) jsonBudget -= size
      let keep: Buffer[] | undefined = regular && (guess || guessJson || opts.capture?.has(path) === true) ? [] : undefined
      let kept = 0
      const maxKeep = guessJson ? Math.max(maxCapture, size) : maxCapture
      stream.on('data', (data: unknown) => {
        const chunk = data as Buffer
        hash?.update(chunk)
        if (head != null && head.length < HEAD_BYTES) {
          head = Buffer.concat([head, chunk.subarray(0, HEAD_BYTES - head.length)])
          // A guess that turns out binary is dropped at once (and its bytes given back).
          if (guess && keep != null && opts.capture?.has(path) !== true && !plainText(head)) { keep = undefined; budget += size }
          if (guessJson && keep != null && opts.capture?.has(path) !== true && head.length >= Math.min(HEAD_BYTES, size) && !(plainText(head) && jsonStart(head))) { keep = undefined; jsonBudget += size }
        }
        if (keep != null && kept < maxKeep) { const part = chunk.subarray(0, maxKeep - kept); keep.push(part); kept += part.length }
      })
      stream.on('end', () => {
        if (head != null) heads.set(path, head)
        if (keep != null) captured.set(path, { content: Buffer.concat(keep), complete: kept >= (header.size ?? 0) })
        files.set(path, {
          path,
          type: header.type ?? 'file',
          size: header.size ?? 0,
          mode: (header.mode ?? 0) & 0o7777,
          uid: header.uid ?? 0,
          gid: header.gid ?? 0,
          mtime: header.mtime != null ? Math.floor(header.mtime.getTime() / 1000) : 0,
          ...(header.linkname != null && header.linkname !== '' ? { linkname: header.linkname } : {}),
          ...(hash != null ? { sha256: hash.digest('hex') } : {}),
          order: order++
        })
        next()
      })
    })
    const unzip = decompressor(mediaType)
    if (unzip != null) await pipeline(blob, unzip, extract)
    else await pipeline(blob, extract)
  })
  return { files, truncated, heads, captured }
}
