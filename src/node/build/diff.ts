import type { Digest } from '../../protocol/types.js'
import { listLayerFiles, type LayerFile } from './layer-files.js'
import { readOciArchive, type OciImage, type OciLayer } from './oci.js'

export type ChangeKind = 'added' | 'removed' | 'content' | 'type' | 'link' | 'mtime' | 'mode' | 'owner' | 'order'
export type DiffVerdict = 'identical' | 'timestamps' | 'file-order' | 'metadata' | 'content'

export interface FileChange {
  path: string
  kinds: ChangeKind[]
  a?: Omit<LayerFile, 'path'>
  b?: Omit<LayerFile, 'path'>
}

export interface LayerDiff {
  /** Position in the image's layer list. */
  index: number
  /** The Dockerfile step that made the layer (history `created_by`). */
  step?: string
  a?: Pick<OciLayer, 'digest' | 'diffId' | 'mediaType'>
  b?: Pick<OciLayer, 'digest' | 'diffId' | 'mediaType'>
  changes: FileChange[]
  /** Changes past the listing limit were counted but not listed. */
  omitted: number
  verdict: Exclude<DiffVerdict, 'identical'>
}

export interface ImageDiff {
  identical: boolean
  index: { a: Digest, b: Digest, equal: boolean }
  /** Per platform; `a` or `b` missing when only one archive has it. */
  manifests: Array<{ platform: string, a?: Digest, b?: Digest, equal: boolean }>
  /** For the first platform both have: which config fields differ (JSON paths). */
  config?: { a: Digest, b: Digest, equal: boolean, fields: string[] }
  layers: LayerDiff[]
  verdict: DiffVerdict
  /** One line for people. */
  summary: string
}

const MAX_LISTED = 200
const MAX_FIELDS = 100

/** JSON paths where two values differ; arrays of equal length are compared per element. */
export function diffJson (a: unknown, b: unknown, path = '', out: string[] = []): string[] {
  if (out.length >= MAX_FIELDS) return out
  if (Object.is(a, b)) return out
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((v, i) => diffJson(v, b[i], `${path}[${i}]`, out))
    return out
  }
  if (a != null && b != null && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    for (const k of keys) diffJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path === '' ? k : `${path}.${k}`, out)
    return out
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path === '' ? '(root)' : path)
  return out
}

function strip (f: LayerFile): Omit<LayerFile, 'path'> {
  const { path: _path, ...rest } = f
  return rest
}

/** Compares two layers' file lists. */
export function compareFiles (a: Map<string, LayerFile>, b: Map<string, LayerFile>): FileChange[] {
  const changes = new Map<string, FileChange>()
  const add = (path: string, kind: ChangeKind): void => {
    let c = changes.get(path)
    if (c == null) {
      c = { path, kinds: [] }
      const fa = a.get(path)
      const fb = b.get(path)
      if (fa != null) c.a = strip(fa)
      if (fb != null) c.b = strip(fb)
      changes.set(path, c)
    }
    if (!c.kinds.includes(kind)) c.kinds.push(kind)
  }
  for (const [path, fa] of a) {
    const fb = b.get(path)
    if (fb == null) { add(path, 'removed'); continue }
    if (fa.type !== fb.type) add(path, 'type')
    if (fa.sha256 !== fb.sha256 || fa.size !== fb.size) add(path, 'content')
    if ((fa.linkname ?? '') !== (fb.linkname ?? '')) add(path, 'link')
    if (fa.mtime !== fb.mtime) add(path, 'mtime')
    if (fa.mode !== fb.mode) add(path, 'mode')
    if (fa.uid !== fb.uid || fa.gid !== fb.gid) add(path, 'owner')
  }
  for (const path of b.keys()) if (!a.has(path)) add(path, 'added')
  // Order: the paths both layers share, in each layer's order.
  const common = (m: Map<string, LayerFile>, other: Map<string, LayerFile>): string[] =>
    [...m.values()].filter(f => other.has(f.path)).sort((x, y) => x.order - y.order).map(f => f.path)
  const sa = common(a, b)
  const sb = common(b, a)
  sa.forEach((p, i) => { if (sb[i] !== p) add(p, 'order') })
  return [...changes.values()].sort((x, y) => x.path < y.path ? -1 : x.path > y.path ? 1 : 0)
}

/** The likely cause, from the kinds of change seen. */
export function verdictOf (kinds: Set<ChangeKind>): Exclude<DiffVerdict, 'identical'> {
  if (['added', 'removed', 'content', 'type', 'link'].some(k => kinds.has(k as ChangeKind))) return 'content'
  if (kinds.has('mode') || kinds.has('owner')) return 'metadata'
  if (kinds.has('mtime')) return 'timestamps'
  if (kinds.has('order')) return 'file-order'
  // Same files, same metadata, different bytes: tar headers (pax records, uname) differ.
  return 'metadata'
}

async function diffLayer (archiveA: string, archiveB: string, index: number, la: OciLayer | undefined, lb: OciLayer | undefined): Promise<LayerDiff> {
  const empty = new Map<string, LayerFile>()
  const fa = la != null ? (await listLayerFiles(archiveA, la.digest, la.mediaType)).files : empty
  const fb = lb != null ? (await listLayerFiles(archiveB, lb.digest, lb.mediaType)).files : empty
  const all = compareFiles(fa, fb)
  const kinds = new Set(all.flatMap(c => c.kinds))
  const step = lb?.createdBy ?? la?.createdBy
  const pick = (l: OciLayer): Pick<OciLayer, 'digest' | 'diffId' | 'mediaType'> => ({ digest: l.digest, diffId: l.diffId, mediaType: l.mediaType })
  return {
    index,
    ...(step != null ? { step } : {}),
    ...(la != null ? { a: pick(la) } : {}),
    ...(lb != null ? { b: pick(lb) } : {}),
    changes: all.slice(0, MAX_LISTED),
    omitted: Math.max(0, all.length - MAX_LISTED),
    verdict: verdictOf(kinds)
  }
}

function rank (v: DiffVerdict): number {
  return ['identical', 'file-order', 'timestamps', 'metadata', 'content'].indexOf(v)
}

/**
 * Compares two OCI image tarballs: index, manifests per platform, config fields, and, for each
 * layer whose diffID differs, the files inside (streamed, never unpacked to disk).
 */
export async function diffOciArchives (a: string, b: string): Promise<ImageDiff> {
  const [ia, ib] = await Promise.all([readOciArchive(a), readOciArchive(b)])
  const platforms = [...new Set([...ia.images.map(i => i.platform), ...ib.images.map(i => i.platform)])]
  const manifests = platforms.map(platform => {
    const ma = ia.images.find(i => i.platform === platform)?.manifestDigest
    const mb = ib.images.find(i => i.platform === platform)?.manifestDigest
    return { platform, ...(ma != null ? { a: ma } : {}), ...(mb != null ? { b: mb } : {}), equal: ma != null && ma === mb }
  })
  const result: ImageDiff = {
    identical: ia.indexDigest === ib.indexDigest,
    index: { a: ia.indexDigest, b: ib.indexDigest, equal: ia.indexDigest === ib.indexDigest },
    manifests,
    layers: [],
    verdict: 'identical',
    summary: ''
  }
  const shared = platforms.find(p => ia.images.some(i => i.platform === p) && ib.images.some(i => i.platform === p))
  if (shared == null) {
    result.verdict = 'content'
    result.summary = 'the archives have no platform in common'
    return result
  }
  const imgA = ia.images.find(i => i.platform === shared) as OciImage
  const imgB = ib.images.find(i => i.platform === shared) as OciImage
  const fields = diffJson(imgA.config, imgB.config)
  result.config = { a: imgA.configDigest, b: imgB.configDigest, equal: imgA.configDigest === imgB.configDigest, fields }
  const count = Math.max(imgA.layers.length, imgB.layers.length)
  for (let i = 0; i < count; i++) {
    const la = imgA.layers[i]
    const lb = imgB.layers[i]
    if (la != null && lb != null && la.diffId === lb.diffId) continue
    result.layers.push(await diffLayer(a, b, i, la, lb))
  }
  let verdict: DiffVerdict = 'identical'
  for (const l of result.layers) if (rank(l.verdict) > rank(verdict)) verdict = l.verdict
  if (verdict === 'identical' && !result.config.equal) {
    // Only the config differs: creation times, or other metadata.
    verdict = fields.every(f => /(^|\.)created$/.test(f)) ? 'timestamps' : 'metadata'
  }
  if (verdict === 'identical' && !result.identical) verdict = 'metadata'
  result.verdict = verdict
  result.summary = result.identical
    ? 'identical'
    : `${result.layers.length} of ${count} layer(s) differ${result.config.equal ? '' : `, config differs in ${fields.length} field(s)`}; likely cause: ${VERDICT_TEXT[verdict]}`
  return result
}

export const VERDICT_TEXT: Record<DiffVerdict, string> = {
  identical: 'none, the images are identical',
  timestamps: 'timestamps only',
  'file-order': 'file order only',
  metadata: 'file metadata (mode, owner or tar headers)',
  content: 'file content'
}
