import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import tar from 'tar-stream'
import type { Transform } from 'node:stream'
import { OciArchiveError } from './errors.js'
import { streamBlob } from './oci.js'

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
export const MAX_LAYER_ENTRIES = 500_000

function decompressor (mediaType: string): Transform | undefined {
  if (/gzip$/.test(mediaType)) return zlib.createGunzip()
  if (/zstd$/.test(mediaType)) {
    const z = zlib as unknown as { createZstdDecompress?: () => Transform }
    if (z.createZstdDecompress == null) throw new OciArchiveError(`layers of type ${mediaType} need a Node.js with zstd support`)
    return z.createZstdDecompress()
  }
  return undefined
}

/** Streams one layer blob out of an OCI tarball and lists its entries (content hashed, never held). */
export async function listLayerFiles (archive: string, digest: string, mediaType: string): Promise<{ files: Map<string, LayerFile>, truncated: boolean }> {
  const files = new Map<string, LayerFile>()
  let truncated = false
  await streamBlob(archive, digest, async blob => {
    const extract = tar.extract()
    let order = 0
    extract.on('entry', (header, stream, next) => {
      if (order >= MAX_LAYER_ENTRIES) { truncated = true; stream.on('end', () => next()); stream.resume(); return }
      const hash = header.type === 'file' || header.type === 'contiguous-file' ? createHash('sha256') : undefined
      stream.on('data', (chunk: unknown) => hash?.update(chunk as Buffer))
      stream.on('end', () => {
        const path = header.name.replace(/^\.?\//, '').replace(/\/$/, '')
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
  return { files, truncated }
}
