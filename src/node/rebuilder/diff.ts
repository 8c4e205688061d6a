import type { Digest } from '../../protocol/types.js'
import { causeRef, type CauseId, type CauseRef } from '../../protocol/causes.js'
import { listLayerFiles, type LayerFile, type LayerListing } from './layer-files.js'
import { readOciArchive, type OciImage, type OciLayer } from './oci.js'
import { DPKG_LIST, DPKG_STATUS, describeChange, listKey, packageDrift, parseDpkgStatus, type PackageChange } from './dpkg.js'
import { looksText, recognise, type LayerFacts, type SideEvidence } from './recognise.js'
import { originsOf, type Origin } from './origin.js'

export type ChangeKind = 'added' | 'removed' | 'content' | 'type' | 'link' | 'mtime' | 'mode' | 'owner' | 'order'
export type DiffVerdict = 'identical' | 'timestamps' | 'file-order' | 'metadata' | 'content'

export interface FileChange {
  path: string
  kinds: ChangeKind[]
  a?: Omit<LayerFile, 'path'>
  b?: Omit<LayerFile, 'path'>
  /** Why this path differs, and what to change. */
  cause?: CauseRef
  /** What the evidence showed (a header field, a package version). */
  detail?: string
  /** Bounded unified diff, for small text files. */
  diff?: string
}

/** The paths of one cause, across layers. */
export interface CauseGroup {
  cause: CauseRef
  count: number
  layers: number[]
  /** The first few paths. */
  paths: string[]
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
  /** Every differing path of the layer, listed or not, counted per cause id. */
  causeCounts: Record<string, number>
  /** Packages installed at another version (from both layers' dpkg status). */
  packages?: PackageChange[]
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
  /** Where each image came from (commit, SOURCE_DATE_EPOCH), and what differs between them: said first. */
  origins?: { a: Origin, b: Origin, differences: string[] }
  /** Differing paths grouped by cause, most paths first. */
  causes: CauseGroup[]
  /** Differing paths in all, and how many got a cause other than `unknown`. */
  paths: { total: number, explained: number }
  verdict: DiffVerdict
  /** One line for people. */
  summary: string
}

const MAX_LISTED = 200
/** Small files whose content is read a second time, for a text diff or a format's fields. */
const MAX_CAPTURED_FILES = 200
/** Small text files kept on the first read, per layer and side. */
const SPECULATIVE_FILE_BYTES = 64 * 1024
const SPECULATIVE_BUDGET = 8 * 1024 * 1024
const MAX_CAPTURE_BYTES = 256 * 1024
const MAX_DPKG_BYTES = 16 * 1024 * 1024
const MAX_LIST_FILES = 5000
const GROUP_PATHS = 5
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

function evidenceOf (f: LayerFile | undefined, listing: LayerListing | undefined): SideEvidence | undefined {
  if (f == null || listing == null) return undefined
  const head = listing.heads.get(f.path)
  const cap = listing.captured.get(f.path)
  return {
    type: f.type,
    size: f.size,
    mtime: f.mtime,
    ...(f.linkname != null ? { linkname: f.linkname } : {}),
    ...(head != null ? { head } : {}),
    ...(cap != null ? { content: cap.content, complete: cap.complete } : {})
  }
}

/** Which differing paths are worth reading again in full, for a text diff or dpkg's database. */
function captureSet (changes: FileChange[], la: LayerListing, lb: LayerListing): Set<string> {
  const want = new Set<string>()
  for (const c of changes) {
    if (want.size >= MAX_CAPTURED_FILES) break
    if (!c.kinds.includes('content') || c.a == null || c.b == null) continue
    if (c.a.size > MAX_CAPTURE_BYTES || c.b.size > MAX_CAPTURE_BYTES) continue
    const text = looksText(la.heads.get(c.path)) && looksText(lb.heads.get(c.path))
    if (text || /machine-id$/.test(c.path)) want.add(c.path)
  }
  if (changes.some(c => c.path === DPKG_STATUS)) {
    want.add(DPKG_STATUS)
    let n = 0
    for (const p of new Set([...la.files.keys(), ...lb.files.keys()])) {
      if (DPKG_LIST.test(p) && n++ < MAX_LIST_FILES) want.add(p)
    }
  }
  return want
}

function dpkgFacts (la: LayerListing, lb: LayerListing): { facts: LayerFacts, packages?: PackageChange[] } {
  const sa = la.captured.get(DPKG_STATUS)
  const sb = lb.captured.get(DPKG_STATUS)
  if (sa == null || sb == null) return { facts: {} }
  const changes = packageDrift(parseDpkgStatus(sa.content.toString('utf8')), parseDpkgStatus(sb.content.toString('utf8')))
  if (changes.length === 0) return { facts: {}, packages: [] }
  const drifted = new Set<string>()
  for (const listing of [la, lb]) {
    for (const p of changes) {
      for (const key of listKey(p.name)) {
        const list = listing.captured.get(`var/lib/dpkg/info/${key}.list`)
        if (list == null) continue
        for (const line of list.content.toString('utf8').split('\n')) if (line.startsWith('/')) drifted.add(line.slice(1))
        drifted.add(`var/lib/dpkg/info/${key}.list`)
      }
    }
  }
  return { facts: { drift: new Map(changes.map(p => [p.name, describeChange(p)])), driftedPaths: drifted }, packages: changes }
}

/** One side of a layer comparison: the OCI tarball, and its layer at this index (absent when that image has fewer). */
interface LayerSide {
  archive: string
  layer: OciLayer | undefined
}

async function diffLayer (index: number, sideA: LayerSide, sideB: LayerSide, epoch: number | undefined): Promise<LayerDiff> {
  const { archive: archiveA, layer: la } = sideA
  const { archive: archiveB, layer: lb } = sideB
  const none: LayerListing = { files: new Map(), truncated: false, heads: new Map(), captured: new Map() }
  const list = async (archive: string, l: OciLayer | undefined, capture?: Set<string>): Promise<LayerListing> => l == null
    ? none
    : await listLayerFiles(archive, l.digest, l.mediaType, capture == null
      ? { heads: true, speculative: { maxFileBytes: SPECULATIVE_FILE_BYTES, budget: SPECULATIVE_BUDGET } }
      : { capture, maxCapture: MAX_DPKG_BYTES })
  // Both sides at once: each is a gunzip and a hash, one core each.
  const [fa, fb] = await Promise.all([list(archiveA, la), list(archiveB, lb)])
  const all = compareFiles(fa.files, fb.files)
  const want = la != null && lb != null ? captureSet(all, fa, fb) : new Set<string>()
  // Small text files were most likely kept on the first read; what was not is read again.
  const missing = new Set([...want].filter(p => fa.captured.get(p)?.complete !== true || fb.captured.get(p)?.complete !== true))
  if (missing.size > 0) {
    // A second read of this layer only, keeping just the files the causes need.
    const [ca, cb] = await Promise.all([list(archiveA, la, missing), list(archiveB, lb, missing)])
    for (const [p, c] of ca.captured) fa.captured.set(p, c)
    for (const [p, c] of cb.captured) fb.captured.set(p, c)
  }
  // Keep only what the causes use: the speculative reads are dropped here.
  for (const side of [fa, fb]) for (const p of [...side.captured.keys()]) if (!want.has(p)) side.captured.delete(p)
  const { facts, packages } = dpkgFacts(fa, fb)
  if (epoch != null) facts.epoch = epoch
  const causeCounts: Record<string, number> = {}
  for (const c of all) {
    const r = recognise({
      path: c.path,
      kinds: c.kinds,
      ...(c.a != null ? { a: evidenceOf(fa.files.get(c.path), fa) } : {}),
      ...(c.b != null ? { b: evidenceOf(fb.files.get(c.path), fb) } : {})
    } as Parameters<typeof recognise>[0], facts)
    c.cause = r.cause
    if (r.detail != null) c.detail = r.detail
    if (r.diff != null) c.diff = r.diff
    causeCounts[r.cause.id] = (causeCounts[r.cause.id] ?? 0) + 1
  }
  const kinds = new Set(all.flatMap(c => c.kinds))
  const step = lb?.createdBy ?? la?.createdBy
  const pick = (l: OciLayer): Pick<OciLayer, 'digest' | 'diffId' | 'mediaType'> => ({ digest: l.digest, diffId: l.diffId, mediaType: l.mediaType })
  // Listed: the most telling first (a cause other than unknown), then by path.
  return {
    index,
    ...(step != null ? { step } : {}),
    ...(la != null ? { a: pick(la) } : {}),
    ...(lb != null ? { b: pick(lb) } : {}),
    changes: all.slice(0, MAX_LISTED),
    omitted: Math.max(0, all.length - MAX_LISTED),
    causeCounts,
    ...(packages != null && packages.length > 0 ? { packages } : {}),
    verdict: verdictOf(kinds)
  }
}

/** Groups every differing path by cause, most paths first. */
export function groupCauses (layers: LayerDiff[]): CauseGroup[] {
  const groups = new Map<string, CauseGroup>()
  for (const l of layers) {
    for (const [id, count] of Object.entries(l.causeCounts)) {
      let g = groups.get(id)
      if (g == null) { g = { cause: causeRef(id as CauseId), count: 0, layers: [], paths: [] }; groups.set(id, g) }
      g.count += count
      g.layers.push(l.index)
      for (const c of l.changes) if (c.cause?.id === id && g.paths.length < GROUP_PATHS) g.paths.push(c.path)
    }
  }
  return [...groups.values()].sort((x, y) => y.count - x.count || (x.cause.id < y.cause.id ? -1 : 1))
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
    causes: [],
    paths: { total: 0, explained: 0 },
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
  const origins = originsOf(imgA, imgB)
  if (origins.differences.length > 0 || !result.identical) result.origins = origins
  const epoch = origins.a.epoch != null && origins.a.epoch === origins.b.epoch ? origins.a.epoch : undefined
  const count = Math.max(imgA.layers.length, imgB.layers.length)
  // Every layer whose diffID differs: a later layer can differ on its own.
  for (let i = 0; i < count; i++) {
    const la = imgA.layers[i]
    const lb = imgB.layers[i]
    if (la != null && lb != null && la.diffId === lb.diffId) continue
    result.layers.push(await diffLayer(i, { archive: a, layer: la }, { archive: b, layer: lb }, epoch))
  }
  result.causes = groupCauses(result.layers)
  if (result.layers.length === 0 && !result.config.equal) result.causes.push({ cause: causeRef('image-config'), count: 0, layers: [], paths: fields.slice(0, GROUP_PATHS) })
  result.paths.total = result.layers.reduce((n, l) => n + l.changes.length + l.omitted, 0)
  result.paths.explained = result.paths.total - result.layers.reduce((n, l) => n + (l.causeCounts.unknown ?? 0), 0)
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
    : `${result.layers.length} of ${count} layer(s) differ${result.config.equal ? '' : `, config differs in ${fields.length} field(s)`}` +
      (result.paths.total > 0 ? `; ${result.paths.total} path(s), ${result.paths.explained} with a known cause (${result.causes.slice(0, 4).map(g => `${g.count} ${g.cause.id}`).join(', ')})` : `; ${VERDICT_TEXT[verdict]}`) +
      (result.origins != null && result.origins.differences.length > 0 ? `; ${result.origins.differences.join('; ')}` : '')
  return result
}

export const VERDICT_TEXT: Record<DiffVerdict, string> = {
  identical: 'none, the images are identical',
  timestamps: 'timestamps only',
  'file-order': 'file order only',
  metadata: 'file metadata (mode, owner or tar headers)',
  content: 'file content'
}
