import { createHash } from 'node:crypto'
import { isCauseId, type CauseId } from './causes.js'
import { verifyEnvelope, type Envelope, type VerifyOptions } from './dsse.js'
import { ValidationError } from './errors.js'
import type { SigningIdentity } from './keys.js'
import { signStatement } from './messages.js'
import { WIRE } from './patterns.js'
import type { Statement } from './statement.js'
import { targetKey } from './target.js'
import { PAYLOAD_TYPE, STATEMENT_TYPE, type Digest, type Target } from './types.js'

/**
 * What builders exchange to say why their images of one target differ, without moving a
 * layer: the signed header of a file manifest (docs/network.md) and the divergence report a
 * node publishes once it compared two manifests (docs/http-api.md). Pure: no I/O.
 */

export const FILE_MANIFEST_PREDICATE = 'https://neko-rebuilder.github.io/file-manifest/v1'
export const DIVERGENCE_PREDICATE = 'https://neko-rebuilder.github.io/divergence/v1'

/** One entry of a layer, as the manifest protocol sends it. */
export interface ManifestEntry {
  /** 0-based layer index. */
  layer: number
  path: string
  type: string
  mode: number
  uid: number
  gid: number
  size: number
  /** Unix seconds. */
  mtime: number
  linkname?: string
  /** Hex sha256 of the content (regular files). */
  sha256?: string
}

/** The signed head of a file manifest: what the entries that follow must add up to. */
export interface FileManifestHeader {
  target: Target
  /** The image manifest digest the builder claimed for the target. */
  manifestDigest: Digest
  platform: string
  layers: Array<{ diffId: Digest, step?: string, entries: number }>
  /** Entries in all, across layers. */
  entries: number
  /** `sha256:` of every entry frame body (without its type byte) each followed by `\n`, in order. */
  entriesDigest: Digest
}

/** One claim a report compares. */
export interface ClaimRef {
  claimId: string
  keyId: string
  manifestDigest: Digest
}

export interface DivergenceCause {
  id: CauseId
  summary: string
  fix: string
  /** Differing paths of this cause, across layers. */
  count: number
  /** Layer indexes where it was seen. */
  layers: number[]
  /** The Dockerfile steps of those layers. */
  steps: string[]
  /** The first few paths. */
  paths: string[]
  /**
   * What the reporting node's own copy of a few of those files shows (a gzip header's mtime,
   * a .pyc header, a line of text), where it read its kept image: `path: detail`.
   */
  evidence?: string[]
}

export interface DivergenceReport {
  target: Target
  /** The claim of the node that wrote the report. */
  a: ClaimRef
  /** The dissenting claim whose manifest it fetched. */
  b: ClaimRef
  /** Differing paths, and how many have a cause other than `unknown`. */
  paths: { total: number, explained: number }
  causes: DivergenceCause[]
  /** Differing layers: index, step, paths per cause. */
  layers: Array<{ index: number, step?: string, causeCounts: Record<string, number> }>
  /** What crossed the network to make the report: manifest entries and their bytes. */
  fetched: { entries: number, bytes: number }
  /** RFC 3339. */
  createdAt: string
}

/** Bounds on what a report holds, so it fits one envelope. */
export const REPORT_LIMITS = { causes: 32, layers: 256, pathsPerCause: 5, stepsPerCause: 8, stepLength: 1024, pathLength: 1024, evidencePerCause: 5, evidenceLength: 512, textLength: 4096, idLength: 256 } as const

/**
 * Largest divergence report envelope a node signs, gossips or accepts (docs/network.md): a
 * report of tens of causes with their steps fits in a few KiB; `fitReport` trims one that
 * does not.
 */
export const REPORT_ENVELOPE_BYTES = 64 * 1024

/** The JSON size of the envelope that `r` signs into, to within a few bytes of signature. */
function envelopeSizeOf (r: DivergenceReport): number {
  const payload = Buffer.byteLength(JSON.stringify(buildDivergenceStatement(r)))
  // base64 of the payload, a signature, a key id and an embedded SPKI key.
  return Math.ceil(payload / 3) * 4 + 600
}

/**
 * `r`, trimmed step by step (fewer steps, paths and evidence per cause, shorter steps, fewer
 * layers, then fewer causes) until its envelope fits `maxBytes`. Counts are never trimmed:
 * `count`, `paths.total` and `causeCounts` still say how many files differ.
 */
export function fitReport (r: DivergenceReport, maxBytes = REPORT_ENVELOPE_BYTES): DivergenceReport {
  if (envelopeSizeOf(r) <= maxBytes) return r
  const cut = (s: string, n: number): string => s.length > n ? s.slice(0, n - 1) + '…' : s
  for (const l of [{ items: 2, text: 256, layers: 64, causes: 32 }, { items: 1, text: 128, layers: 16, causes: 16 }, { items: 0, text: 64, layers: 4, causes: 8 }]) {
    const t: DivergenceReport = {
      ...r,
      causes: r.causes.slice(0, l.causes).map(c => ({
        ...c,
        summary: cut(c.summary, l.text * 2),
        fix: cut(c.fix, l.text * 2),
        layers: c.layers.slice(0, l.layers),
        steps: c.steps.slice(0, Math.max(1, l.items)).map(s => cut(s, l.text)),
        paths: c.paths.slice(0, Math.max(1, l.items)).map(p => cut(p, l.text)),
        ...(c.evidence != null && l.items > 0 ? { evidence: c.evidence.slice(0, l.items).map(e => cut(e, l.text)) } : {})
      })),
      layers: r.layers.slice(0, l.layers).map(x => ({ ...x, ...(x.step != null ? { step: cut(x.step, l.text) } : {}) }))
    }
    if (envelopeSizeOf(t) <= maxBytes) return t
    r = t
  }
  return r
}

export function entriesDigestOf (bodies: Iterable<Uint8Array>): Digest {
  const h = createHash('sha256')
  for (const b of bodies) { h.update(b); h.update('\n') }
  return `sha256:${h.digest('hex')}`
}

/** Incremental form of `entriesDigestOf`, for a client that checks frames as they arrive. */
export function entriesHasher (): { add: (body: Uint8Array) => void, digest: () => Digest } {
  const h = createHash('sha256')
  return { add (b) { h.update(b); h.update('\n') }, digest: () => `sha256:${h.digest('hex')}` }
}

function hexOf (d: Digest): string {
  return d.startsWith('sha256:') ? d.slice(7) : d
}

function subjectOf (target: Target, manifestDigest: Digest): Statement['subject'] {
  return [{ name: targetKey(target), digest: { sha256: hexOf(manifestDigest) } }]
}

export function signFileManifestHeader (h: FileManifestHeader, identity: SigningIdentity): Envelope {
  return signStatement({ _type: STATEMENT_TYPE, subject: subjectOf(h.target, h.manifestDigest), predicateType: FILE_MANIFEST_PREDICATE, predicate: h as unknown as Record<string, unknown> }, identity)
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isCount (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isDigest (v: unknown): v is Digest {
  return typeof v === 'string' && WIRE.digest.test(v)
}

function isTarget (v: unknown): v is Target {
  if (!isRecord(v)) return false
  return ['repository', 'commit', 'variant', 'platform'].every(k => typeof v[k] === 'string' && (v[k] as string).length <= 2048) &&
    (v.tag === undefined || typeof v.tag === 'string')
}

function statementOf (envelope: unknown, predicateType: string, opts: VerifyOptions): { statement: Statement, keyId: string } {
  const v = verifyEnvelope(envelope, opts)
  if (v.payloadType !== PAYLOAD_TYPE) throw new ValidationError('payloadType', `expected ${PAYLOAD_TYPE}`)
  let statement: unknown
  try {
    statement = JSON.parse(Buffer.from(v.payload).toString('utf8'))
  } catch {
    throw new ValidationError('payload', 'is not JSON')
  }
  if (!isRecord(statement) || statement._type !== STATEMENT_TYPE) throw new ValidationError('payload._type', `expected ${STATEMENT_TYPE}`)
  if (statement.predicateType !== predicateType) throw new ValidationError('payload.predicateType', `expected ${predicateType}`)
  if (!isRecord(statement.predicate)) throw new ValidationError('payload.predicate', 'must be an object')
  return { statement: statement as unknown as Statement, keyId: v.keyId }
}

/** Verifies a file manifest header's signature and shape; returns it with the signer's key id. */
export function verifyFileManifestHeader (envelope: unknown, opts: VerifyOptions): { header: FileManifestHeader, keyId: string } {
  const { statement, keyId } = statementOf(envelope, FILE_MANIFEST_PREDICATE, opts)
  const p = statement.predicate
  if (!isTarget(p.target)) throw new ValidationError('predicate.target', 'must name repository, commit, variant and platform')
  if (!isDigest(p.manifestDigest)) throw new ValidationError('predicate.manifestDigest', 'must be a sha256 digest')
  if (typeof p.platform !== 'string') throw new ValidationError('predicate.platform', 'must be a string')
  if (!isCount(p.entries)) throw new ValidationError('predicate.entries', 'must be a non-negative integer')
  if (!isDigest(p.entriesDigest)) throw new ValidationError('predicate.entriesDigest', 'must be a sha256 digest')
  if (!Array.isArray(p.layers) || p.layers.length > 4096) throw new ValidationError('predicate.layers', 'must be an array of at most 4096 layers')
  let sum = 0
  for (const [i, l] of (p.layers as unknown[]).entries()) {
    if (!isRecord(l) || !isDigest(l.diffId) || !isCount(l.entries) || (l.step !== undefined && typeof l.step !== 'string')) {
      throw new ValidationError(`predicate.layers[${i}]`, 'must have a diffId, an entry count and an optional step')
    }
    sum += l.entries
  }
  if (sum !== p.entries) throw new ValidationError('predicate.entries', `is ${String(p.entries)}, the layers add up to ${sum}`)
  return { header: p as unknown as FileManifestHeader, keyId }
}

/** Checks one entry frame body; throws ValidationError naming the bad field. */
export function parseManifestEntry (body: Uint8Array, layers: number): ManifestEntry {
  let v: unknown
  try {
    v = JSON.parse(Buffer.from(body).toString('utf8'))
  } catch {
    throw new ValidationError('entry', 'is not JSON')
  }
  if (!isRecord(v)) throw new ValidationError('entry', 'must be a JSON object')
  if (!isCount(v.layer) || v.layer >= layers) throw new ValidationError('entry.layer', `must be a layer index below ${layers}`)
  if (typeof v.path !== 'string' || v.path.length === 0 || v.path.length > 4096) throw new ValidationError('entry.path', 'must be a non-empty string of at most 4096 characters')
  if (typeof v.type !== 'string' || v.type.length > 32) throw new ValidationError('entry.type', 'must be a short string')
  for (const k of ['mode', 'uid', 'gid', 'size']) if (!isCount(v[k])) throw new ValidationError(`entry.${k}`, 'must be a non-negative integer')
  if (typeof v.mtime !== 'number' || !Number.isFinite(v.mtime)) throw new ValidationError('entry.mtime', 'must be a number')
  if (v.linkname !== undefined && (typeof v.linkname !== 'string' || v.linkname.length > 4096)) throw new ValidationError('entry.linkname', 'must be a string of at most 4096 characters')
  if (v.sha256 !== undefined && (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256))) throw new ValidationError('entry.sha256', 'must be 64 hex digits')
  return v as unknown as ManifestEntry
}

export function buildDivergenceStatement (r: DivergenceReport): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [...subjectOf(r.target, r.a.manifestDigest), ...subjectOf(r.target, r.b.manifestDigest)],
    predicateType: DIVERGENCE_PREDICATE,
    predicate: r as unknown as Record<string, unknown>
  }
}

export function signDivergenceReport (r: DivergenceReport, identity: SigningIdentity): Envelope {
  return signStatement(buildDivergenceStatement(r), identity)
}

function isText (v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max
}

function isTextList (v: unknown, items: number, max: number): v is string[] {
  return Array.isArray(v) && v.length <= items && v.every(x => isText(x, max))
}

function isClaimRef (v: unknown): v is ClaimRef {
  return isRecord(v) && isText(v.claimId, REPORT_LIMITS.idLength) && isText(v.keyId, REPORT_LIMITS.idLength) && isDigest(v.manifestDigest)
}

function checkCause (c: unknown, i: number): void {
  const at = `predicate.causes[${i}]`
  if (!isRecord(c) || typeof c.id !== 'string' || !isCauseId(c.id) || !isCount(c.count)) throw new ValidationError(at, 'must name a catalogue cause and a count')
  if (!isText(c.summary, REPORT_LIMITS.textLength) || !isText(c.fix, REPORT_LIMITS.textLength)) throw new ValidationError(at, `summary and fix must be strings of at most ${REPORT_LIMITS.textLength} characters`)
  if (!Array.isArray(c.layers) || c.layers.length > REPORT_LIMITS.layers || !c.layers.every(isCount)) throw new ValidationError(`${at}.layers`, `must be at most ${REPORT_LIMITS.layers} layer indexes`)
  if (!isTextList(c.steps, REPORT_LIMITS.stepsPerCause, REPORT_LIMITS.stepLength)) throw new ValidationError(`${at}.steps`, `must be at most ${REPORT_LIMITS.stepsPerCause} strings of at most ${REPORT_LIMITS.stepLength} characters`)
  if (!isTextList(c.paths, REPORT_LIMITS.pathsPerCause, REPORT_LIMITS.pathLength)) throw new ValidationError(`${at}.paths`, `must be at most ${REPORT_LIMITS.pathsPerCause} strings of at most ${REPORT_LIMITS.pathLength} characters`)
  if (c.evidence !== undefined && !isTextList(c.evidence, REPORT_LIMITS.evidencePerCause, REPORT_LIMITS.evidenceLength)) throw new ValidationError(`${at}.evidence`, `must be at most ${REPORT_LIMITS.evidencePerCause} strings of at most ${REPORT_LIMITS.evidenceLength} characters`)
}

function checkLayer (l: unknown, i: number): void {
  if (!isRecord(l) || !isCount(l.index) || (l.step !== undefined && !isText(l.step, REPORT_LIMITS.stepLength)) || !isRecord(l.causeCounts) ||
    !Object.entries(l.causeCounts).every(([k, n]) => isCauseId(k) && isCount(n))) {
    throw new ValidationError(`predicate.layers[${i}]`, 'must hold an index, an optional step and counts per catalogue cause')
  }
}

/**
 * Verifies a divergence report: the signature (with `opts.keys`, or the embedded key when
 * allowed), the predicate's shape and that every cause is one of the catalogue's ids.
 */
export function verifyDivergenceReport (envelope: unknown, opts: VerifyOptions): { report: DivergenceReport, keyId: string } {
  const { statement, keyId } = statementOf(envelope, DIVERGENCE_PREDICATE, opts)
  const p = statement.predicate
  if (!isTarget(p.target)) throw new ValidationError('predicate.target', 'must name repository, commit, variant and platform')
  if (!isClaimRef(p.a) || !isClaimRef(p.b)) throw new ValidationError('predicate.a', 'a and b must each name a claim id, key id and manifest digest')
  if (!isRecord(p.paths) || !isCount(p.paths.total) || !isCount(p.paths.explained)) throw new ValidationError('predicate.paths', 'must hold total and explained counts')
  if (!Array.isArray(p.causes) || p.causes.length > REPORT_LIMITS.causes) throw new ValidationError('predicate.causes', `must be an array of at most ${REPORT_LIMITS.causes}`)
  for (const [i, c] of (p.causes as unknown[]).entries()) checkCause(c, i)
  if (!Array.isArray(p.layers) || p.layers.length > REPORT_LIMITS.layers) throw new ValidationError('predicate.layers', `must be an array of at most ${REPORT_LIMITS.layers}`)
  for (const [i, l] of (p.layers as unknown[]).entries()) checkLayer(l, i)
  if (!isRecord(p.fetched) || !isCount(p.fetched.entries) || !isCount(p.fetched.bytes)) throw new ValidationError('predicate.fetched', 'must hold entries and bytes counts')
  if (typeof p.createdAt !== 'string' || p.createdAt.length > 64 || Number.isNaN(Date.parse(p.createdAt))) throw new ValidationError('predicate.createdAt', 'must be an RFC 3339 time')
  if (p.paths.explained > p.paths.total) throw new ValidationError('predicate.paths', 'explained cannot exceed total')
  const subjects = statement.subject.map(s => s.digest?.sha256)
  if (!subjects.includes(hexOf(p.a.manifestDigest)) || !subjects.includes(hexOf(p.b.manifestDigest))) {
    throw new ValidationError('subject', 'must name both manifest digests')
  }
  return { report: p as unknown as DivergenceReport, keyId }
}
