import { createHash } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { gzipSync } from 'node:zlib'
import tar from 'tar-stream'

export interface SyntheticFile {
  path: string
  content?: string | Buffer
  mode?: number
  uid?: number
  gid?: number
  /** Unix seconds */
  mtime?: number
  type?: 'file' | 'directory' | 'symlink'
  linkname?: string
}

export interface SyntheticLayer {
  files: SyntheticFile[]
  createdBy: string
}

type EntryHeader = Parameters<ReturnType<typeof tar.pack>['entry']>[0]

async function tarOf (entries: Array<{ header: EntryHeader, body?: Buffer }>): Promise<Buffer> {
  const pack = tar.pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer))
    pack.on('end', () => resolve())
    pack.on('error', reject)
  })
  for (const e of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(e.header, e.body ?? Buffer.alloc(0), err => err != null ? reject(err) : resolve()))
  }
  pack.finalize()
  await done
  return Buffer.concat(chunks)
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/**
 * Writes an OCI image layout tarball by hand (index, manifest, config, gzip layers), so diff
 * verdicts can be tested on differences a real build rarely produces on demand.
 */
export async function writeSyntheticOci (path: string, layers: SyntheticLayer[], opts: { created?: string, platform?: { os: string, architecture: string } } = {}): Promise<void> {
  const blobs = new Map<string, Buffer>()
  const layerDescs: Array<Record<string, unknown>> = []
  const diffIds: string[] = []
  for (const layer of layers) {
    const raw = await tarOf(layer.files.map(f => ({
      header: {
        name: f.path,
        type: f.type ?? 'file',
        mode: f.mode ?? (f.type === 'directory' ? 0o755 : 0o644),
        uid: f.uid ?? 0,
        gid: f.gid ?? 0,
        mtime: new Date((f.mtime ?? 1_700_000_000) * 1000),
        ...(f.linkname != null ? { linkname: f.linkname } : {})
      },
      ...(f.type == null || f.type === 'file' ? { body: typeof f.content === 'string' || f.content == null ? Buffer.from(f.content ?? '') : f.content } : {})
    })))
    const gz = gzipSync(raw, { level: 6 })
    blobs.set(sha(gz), gz)
    diffIds.push(`sha256:${sha(raw)}`)
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${sha(gz)}`, size: gz.length })
  }
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' }
  const created = opts.created ?? '2023-11-14T22:13:20Z'
  const config = Buffer.from(JSON.stringify({
    architecture: platform.architecture,
    os: platform.os,
    created,
    config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map(l => ({ created, created_by: l.createdBy }))
  }))
  blobs.set(sha(config), config)
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(config)}`, size: config.length },
    layers: layerDescs
  }))
  blobs.set(sha(manifest), manifest)
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${sha(manifest)}`, size: manifest.length, platform }]
  }))
  const entries = [
    { header: { name: 'oci-layout', mode: 0o444 }, body: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    { header: { name: 'index.json', mode: 0o644 }, body: index },
    ...[...blobs].map(([hex, body]) => ({ header: { name: `blobs/sha256/${hex}`, mode: 0o444 }, body }))
  ]
  await writeFile(path, await tarOf(entries))
}
