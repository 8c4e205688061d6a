import type { Digest } from '../../protocol/types.js'
import { causeRef, type CauseId, type CauseRef } from '../../protocol/causes.js'
import { jsonStart, listLayerFiles, readOciArchive, type LayerFile, type LayerListing, type OciImage, type OciLayer } from '../oci/index.js'
import { DPKG_LIST, DPKG_STATUS, describeChange, listKey, packageDrift, parseDpkgStatus, type PackageChange } from './dpkg.js'
import { looksText, recognise, type LayerFacts, type SideEvidence } from './recognise.js'
import { originsOf, type Origin } from './origin.js'
import { jsonChanges, MAX_JSON_BYTES } from './json-diff.js'

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
  /** Differing paths past `maxPaths`: recognised and counted, but not listed. */
  omitted: number
  /** Every differing path of the layer, listed or not, counted per cause id: they add up to the layer's paths. */
  causeCounts: Record<string, number>
  /** The omitted paths per cause id (exact: each was recognised like a listed one); absent when none was omitted. */
  omittedCauses?: Record<string, number>
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
  /** Differing paths in all, how many got a cause other than `unknown`, how many are listed and how many were left out past `maxPaths`. */
  paths: { total: number, explained: number, listed: number, omitted: number }
  verdict: DiffVerdict
  /** One line for people. */
  summary: string
}

/** Differing paths listed in all layers unless the caller says otherwise (`diff --max-paths`). */
export const DEFAULT_MAX_PATHS = 10_000
/** Unified diffs kept per cause and layer: the first paths of a cause carry one, the rest only their cause and detail. */
const MAX_DIFFS_PER_CAUSE = 50
/** Bytes of differing files read again per pass of a layer, per side; more files take more passes. */
const CAPTURE_PASS_BYTES = 64 * 1024 * 1024
/** Small text files kept on the first read, per layer and side. */
const SPECULATIVE_FILE_BYTES = 64 * 1024
const SPECULATIVE_BUDGET = 8 * 1024 * 1024
/** JSON documents kept on the first read, per layer and side: a one-line file of megabytes rarely needs a second read. */
const SPECULATIVE_JSON_BUDGET = 64 * 1024 * 1024
const MAX_CAPTURE_BYTES = 256 * 1024
/** A JSON document (its first byte `{` or `[`) is read up to this size and compared by its keys. */
const MAX_JSON_CAPTURE_BYTES = MAX_JSON_BYTES
const MAX_DPKG_BYTES = 16 * 1024 * 1024
const MAX_LIST_FILES = 5000
const GROUP_PATHS = 5
const MAX_FIELDS = 100

/** JSON paths where two values differ; arrays of equal length are compared per element. */
export function diffJson (a: unknown, b: unknown): string[] {
  return jsonChanges(a, b, MAX_FIELDS).map(c => c.path)
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

/**
 * Which differing paths are worth reading in full, for a text diff, a JSON comparison or dpkg's
 * database: every one that qualifies, so that every path's cause rests on the same evidence.
 */
function captureSet (changes: FileChange[], la: LayerListing, lb: LayerListing): Set<string> {
  const want = new Set<string>()
  for (const c of changes) {
    if (!c.kinds.includes('content') || c.a == null || c.b == null) continue
    const ha = la.heads.get(c.path)
    const hb = lb.heads.get(c.path)
    const limit = jsonStart(ha) && jsonStart(hb) ? MAX_JSON_CAPTURE_BYTES : MAX_CAPTURE_BYTES
    if (c.a.size > limit || c.b.size > limit) continue
    if ((looksText(ha) && looksText(hb)) || /machine-id$/.test(c.path)) want.add(c.path)
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

/** Splits the paths to read into passes of at most CAPTURE_PASS_BYTES per side; dpkg's database comes first. */
function capturePasses (paths: Iterable<string>, la: LayerListing, lb: LayerListing): Array<Set<string>> {
  const size = (p: string): number => Math.max(la.files.get(p)?.size ?? 0, lb.files.get(p)?.size ?? 0)
  const ordered = [...paths].sort((x, y) => Number(DPKG_LIST.test(y) || y === DPKG_STATUS) - Number(DPKG_LIST.test(x) || x === DPKG_STATUS))
  const passes: Array<Set<string>> = []
  let current = new Set<string>()
  let bytes = 0
  for (const p of ordered) {
    const n = size(p)
    const dpkg = DPKG_LIST.test(p) || p === DPKG_STATUS
    if (current.size > 0 && bytes + n > CAPTURE_PASS_BYTES && !(dpkg && passes.length === 0)) { passes.push(current); current = new Set(); bytes = 0 }
    current.add(p)
    bytes += n
  }
  if (current.size > 0) passes.push(current)
  return passes
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
      ? { heads: true, speculative: { maxFileBytes: SPECULATIVE_FILE_BYTES, budget: SPECULATIVE_BUDGET, maxJsonBytes: MAX_JSON_CAPTURE_BYTES, jsonBudget: SPECULATIVE_JSON_BUDGET } }
      : { capture, maxCapture: MAX_DPKG_BYTES })
  // Both sides at once: each is a gunzip and a hash, one core each.
  const [fa, fb] = await Promise.all([list(archiveA, la), list(archiveB, lb)])
  const all = compareFiles(fa.files, fb.files)
  const want = la != null && lb != null ? captureSet(all, fa, fb) : new Set<string>()
  // Keep only what the causes use: the speculative reads are dropped here.
  for (const side of [fa, fb]) for (const p of [...side.captured.keys()]) if (!want.has(p)) side.captured.delete(p)
  // Small text files were most likely kept on the first read; the rest are read again, in
  // passes bounded in bytes, and each pass's files are recognised before the next is read.
  const missing = [...want].filter(p => fa.captured.get(p)?.complete !== true || fb.captured.get(p)?.complete !== true)
  const passes = capturePasses(missing, fa, fb)
  const passOf = new Map<string, number>()
  passes.forEach((pass, i) => { for (const p of pass) passOf.set(p, i) })
  const read = async (pass: Set<string>): Promise<void> => {
    const [ca, cb] = await Promise.all([list(archiveA, la, pass), list(archiveB, lb, pass)])
    for (const [p, c] of ca.captured) fa.captured.set(p, c)
    for (const [p, c] of cb.captured) fb.captured.set(p, c)
  }
  if (passes[0] != null) await read(passes[0])
  // dpkg's database is in the first pass: package drift is known before any file is judged.
  const { facts, packages } = dpkgFacts(fa, fb)
  if (epoch != null) facts.epoch = epoch
  const causeCounts: Record<string, number> = {}
  const diffsPerCause = new Map<string, number>()
  const judge = (c: FileChange): void => {
    const r = recognise({
      path: c.path,
      kinds: c.kinds,
      ...(c.a != null ? { a: evidenceOf(fa.files.get(c.path), fa) } : {}),
      ...(c.b != null ? { b: evidenceOf(fb.files.get(c.path), fb) } : {})
    } as Parameters<typeof recognise>[0], facts)
    c.cause = r.cause
    if (r.detail != null) c.detail = r.detail
    const shown = diffsPerCause.get(r.cause.id) ?? 0
    if (r.diff != null && shown < MAX_DIFFS_PER_CAUSE) { c.diff = r.diff; diffsPerCause.set(r.cause.id, shown + 1) }
    causeCounts[r.cause.id] = (causeCounts[r.cause.id] ?? 0) + 1
  }
  const release = (pass: Set<string> | undefined): void => {
    if (pass != null) for (const side of [fa, fb]) for (const p of pass) if (!DPKG_LIST.test(p) && p !== DPKG_STATUS) side.captured.delete(p)
  }
  for (const c of all) if ((passOf.get(c.path) ?? 0) === 0) judge(c)
  release(passes[0])
  for (let i = 1; i < passes.length; i++) {
    const pass = passes[i] as Set<string>
    await read(pass)
    for (const c of all) if (passOf.get(c.path) === i) judge(c)
    release(pass)
  }
  const kinds = new Set(all.flatMap(c => c.kinds))
  const step = lb?.createdBy ?? la?.createdBy
  const pick = (l: OciLayer): Pick<OciLayer, 'digest' | 'diffId' | 'mediaType'> => ({ digest: l.digest, diffId: l.diffId, mediaType: l.mediaType })
  return {
    index,
    ...(step != null ? { step } : {}),
    ...(la != null ? { a: pick(la) } : {}),
    ...(lb != null ? { b: pick(lb) } : {}),
    changes: all,
    omitted: 0,
    causeCounts,
    ...(packages != null && packages.length > 0 ? { packages } : {}),
    verdict: verdictOf(kinds)
  }
}

/**
 * Keeps at most `max` listed paths over all layers, in layer order. Where a layer's paths do
 * not all fit, they are taken round the causes (the first path of each cause, then the second,
 * ...) so that every cause keeps examples; the rest are counted per cause in `omittedCauses`.
 */
export function limitListed (layers: LayerDiff[], max: number): void {
  let left = Math.max(0, max)
  for (const l of layers) {
    if (l.changes.length <= left) { left -= l.changes.length; continue }
    const byCause = new Map<string, FileChange[]>()
    for (const c of l.changes) {
      const id = c.cause?.id ?? 'unknown'
      const group = byCause.get(id)
      if (group == null) byCause.set(id, [c])
      else group.push(c)
    }
    const keep = new Set<FileChange>()
    for (let i = 0; keep.size < left; i++) {
      for (const group of byCause.values()) if (group[i] != null && keep.size < left) keep.add(group[i] as FileChange)
    }
    const omittedCauses: Record<string, number> = {}
    for (const c of l.changes) if (!keep.has(c)) omittedCauses[c.cause?.id ?? 'unknown'] = (omittedCauses[c.cause?.id ?? 'unknown'] ?? 0) + 1
    l.omitted += l.changes.length - keep.size
    l.changes = l.changes.filter(c => keep.has(c))
    l.omittedCauses = omittedCauses
    left -= keep.size
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
export interface DiffOptions {
  /** Differing paths listed at most, over all layers (default DEFAULT_MAX_PATHS); the rest are counted per cause. */
  maxPaths?: number
}

export async function diffOciArchives (a: string, b: string, opts: DiffOptions = {}): Promise<ImageDiff> {
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
    paths: { total: 0, explained: 0, listed: 0, omitted: 0 },
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
  limitListed(result.layers, opts.maxPaths ?? DEFAULT_MAX_PATHS)
  result.causes = groupCauses(result.layers)
  if (result.layers.length === 0 && !result.config.equal) result.causes.push({ cause: causeRef('image-config'), count: 0, layers: [], paths: fields.slice(0, GROUP_PATHS) })
  result.paths.total = result.layers.reduce((n, l) => n + l.changes.length + l.omitted, 0)
  result.paths.explained = result.paths.total - result.layers.reduce((n, l) => n + (l.causeCounts.unknown ?? 0), 0)
  result.paths.listed = result.layers.reduce((n, l) => n + l.changes.length, 0)
  result.paths.omitted = result.paths.total - result.paths.listed
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
