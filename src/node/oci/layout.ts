import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, normalize } from 'node:path'
import { pipeline } from 'node:stream/promises'
import tar from 'tar-stream'
import { OciArchiveError } from './errors.js'

/**
 * Unpacks an OCI layout tarball into `dir` (for `oci-layout://` build contexts). Only regular
 * files and directories, and only paths inside `dir`: the tarball is our own export, but a
 * rebuilder never trusts a path it did not make.
 */
export async function extractOciArchive (tarPath: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const extract = tar.extract()
  extract.on('entry', (header, stream, next) => {
    const rel = normalize(header.name)
    if (rel.startsWith('..') || rel.startsWith('/')) { extract.destroy(new OciArchiveError(`${tarPath}: entry ${header.name} escapes the layout`)); return }
    const target = join(dir, rel)
    if (header.type === 'directory') {
      mkdir(target, { recursive: true }).then(() => { stream.resume(); stream.on('end', next) }, err => extract.destroy(err as Error))
    } else if (header.type === 'file') {
      mkdir(dirname(target), { recursive: true })
        .then(async () => { await pipeline(stream, createWriteStream(target)) })
        .then(() => next(), err => extract.destroy(err as Error))
    } else {
      stream.on('end', next)
      stream.resume()
    }
  })
  await pipeline(createReadStream(tarPath), extract)
}
