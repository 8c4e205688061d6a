import { isUtf8 } from 'node:buffer'
import { causeRef, type CauseId, type CauseRef } from '../../protocol/causes.js'
import { jsonChanges, MAX_JSON_CHANGES, parseJsonDocument } from './json-diff.js'
import { textChanges } from './text-diff.js'

/** What a differing path's two sides look like, as far as the listing saw them. */
export interface SideEvidence {
  type: string
  size: number
  mtime: number
  linkname?: string
  /** First bytes of a regular file. */
  head?: Buffer
  /** Whole content of a small file (or its start), when it was captured. */
  content?: Buffer
  complete?: boolean
}

export interface ChangeEvidence {
  path: string
  kinds: string[]
  a?: SideEvidence
  b?: SideEvidence
}

export interface Recognised {
  cause: CauseRef
  /** What the evidence showed, in one line: `gzip header mtime 2025-… vs 2025-…`. */
  detail?: string
  /** A bounded unified diff of a small text file. */
  diff?: string
}

/** Facts about the whole layer that explain single files: packages whose version moved. */
export interface LayerFacts {
  /** Paths owned by a package whose version differs between the two sides. */
  driftedPaths?: ReadonlySet<string>
  /** Packages whose version differs: name → `old → new`. */
  drift?: ReadonlyMap<string, string>
  /** SOURCE_DATE_EPOCH of the builds, when known: file times past it were not clamped. */
  epoch?: number
}

const MACHINE_ID = /^(etc\/machine-id|var\/lib\/dbus\/machine-id)$/
const FONT_CACHE = /^(var\/cache\/fontconfig\/|usr\/lib\/fontconfig\/cache\/).*\.cache-\d+$/
const AUX_CACHE = /^var\/cache\/ldconfig\/aux-cache$/
const PACKAGE_LOGS = /^var\/log\/(dpkg\.log|alternatives\.log|bootstrap\.log|apt\/[^/]+|fontconfig\.log)$/
const PACKAGE_BACKUPS = /^(var\/lib\/dpkg\/[^/]+-old|var\/cache\/debconf\/[^/]+-old|var\/backups\/[^/]+)$/
const APT_LISTS = /^(var\/lib\/apt\/lists\/|var\/cache\/apt\/)/
const DPKG_DB = /^var\/lib\/dpkg\/(status|available|info\/[^/]+)$/
const PYC = /(^|\/)__pycache__\/[^/]+\.pyc$|\.py[co]$/
const ZIP_NAME = /\.(zip|jar|war|ear|whl|apk|xpi|egg)$/i

const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)'
const WEEKDAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)'

/** Each form of a date or time a build step writes, with the name a detail gives it. */
const TIME_FORMS: Array<[string, RegExp]> = [
  ['HTTP date header', new RegExp(`\\b${WEEKDAY}, \\d{2} ${MONTH} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT\\b`)],
  ['ISO 8601 time', /\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?/],
  ['date output', new RegExp(`\\b${WEEKDAY},? +\\d{1,2}? ?${MONTH}\\b`)],
  ['syslog time', new RegExp(`\\b${MONTH} +\\d{1,2} +\\d{2}:\\d{2}:\\d{2}\\b`)],
  // Unix times of 2017-2033; the digits after the seconds give the unit. No longer digit run matches.
  ['Unix time in nanoseconds', /\b1[5-9]\d{17}\b/],
  ['Unix time in microseconds', /\b1[5-9]\d{14}\b/],
  ['Unix time in milliseconds', /\b1[5-9]\d{11}\b/],
  ['Unix time in seconds', /\b1[5-9]\d{8}\b/]
]

/**
 * Dates and times as build steps write them, anywhere in a line: ISO 8601, HTTP date headers,
 * `date` and syslog output, dpkg's log format, and Unix times in seconds, milliseconds,
 * microseconds or nanoseconds.
 */
export const TIMESTAMP = new RegExp(TIME_FORMS.map(([, r]) => `(?:${r.source})`).join('|'))
export const TEMP_PATH = /\/tmp\/[A-Za-z0-9._-]*[A-Za-z0-9]{6,}|\/var\/tmp\/|buildkit-[a-z0-9]+|\/proc\/self\//

/** The forms of time found in `lines`, in catalogue order: `Unix time in milliseconds, HTTP date header`. */
export function timeForms (lines: readonly string[]): string[] {
  const found = TIME_FORMS.filter(([, r]) => lines.some(l => r.test(l))).map(([name]) => name)
  // An HTTP date also reads as `date` output; name it once.
  return found.includes('HTTP date header') ? found.filter(f => f !== 'date output') : found
}

/**
 * Language package managers' and build tools' caches, logs and state, wherever the home
 * directory or the project is (`root/.npm/`, `home/node/.npm/`, `app/node_modules/.cache/`).
 */
const ECOSYSTEM_PATHS: Array<[RegExp, CauseId]> = [
  [/(^|\/)\.npm\//, 'npm-cache'],
  [/(^|\/)(\.cache\/yarn|\.yarn-cache|\.yarn\/berry)\/|(^|\/)\.yarn\/install-state\.gz$|(^|\/)yarn-error\.log$/, 'yarn-cache'],
  [/(^|\/)(\.local\/share\/pnpm\/store|\.pnpm-store|\.cache\/pnpm|pnpm\/store)\/|(^|\/)node_modules\/\.modules\.yaml$/, 'pnpm-store'],
  [/(^|\/)\.cache\/pip\//, 'pip-cache'],
  [/(^|\/)\.cache\/pypoetry\//, 'poetry-cache'],
  [/(^|\/)(\.cache\/go-build|go\/pkg\/mod\/cache|\.config\/go\/telemetry)\//, 'go-cache'],
  // Not /usr/share/cargo/registry: Debian's packaged crate sources, files of a package.
  [/(^|\/)(\.cargo|usr\/local\/cargo)\/(registry\/|git\/|\.package-cache|\.global-cache|\.crates\.toml$|\.crates2\.json$)|(^|\/)target\/([^/]+\/)?(debug|release)\/(\.fingerprint|build|deps|incremental|\.cargo-lock)(\/|$)|(^|\/)target\/(\.rustc_info\.json|CACHEDIR\.TAG|\.package-cache)$/, 'cargo-cache'],
  [/(^|\/)\.m2\/(repository|wrapper)\//, 'maven-cache'],
  [/(^|\/)\.gradle\//, 'gradle-cache'],
  [/(^|\/)\.eslintcache$|(^|\/)node_modules\/\.cache\/eslint[^/]*\//, 'eslint-cache'],
  [/(^|\/)node_modules\/\.cache\/(babel-loader|@babel)\/|(^|\/)\.babel\.json$/, 'babel-cache'],
  [/(^|\/)node_modules\/\.cache\/(webpack|terser-webpack-plugin|css-minimizer-webpack-plugin)\/|(^|\/)\.next\/cache\//, 'webpack-cache'],
  [/\.tsbuildinfo$/, 'tsbuildinfo']
]

/** The ecosystem cache, log or state directory a path lies in, if any. */
export function ecosystemCause (path: string): CauseId | undefined {
  return ECOSYSTEM_PATHS.find(([re]) => re.test(path))?.[1]
}

const iso = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z')

function sameHead (a: SideEvidence | undefined, b: SideEvidence | undefined, magic: number[]): boolean {
  return startsWith(a?.head, magic) && startsWith(b?.head, magic)
}

/** Bytes that make a file binary: controls other than tab, newline, form feed and carriage return, and DEL. */
const CONTROL_BYTES = [...Array.from({ length: 32 }, (_, i) => i).filter(c => c !== 9 && c !== 10 && c !== 12 && c !== 13), 127]
/** U+FFFD in UTF-8: a decoder's mark for bytes that are not UTF-8. */
const REPLACEMENT = Buffer.from('\uFFFD', 'utf8')

/** A file whose first bytes (and captured content) hold no control bytes besides whitespace. */
export function looksText (buf: Buffer | undefined): boolean {
  if (buf == null) return false
  // One native scan per control byte: files of hundreds of KiB are judged without a loop in JS.
  for (const c of CONTROL_BYTES) if (buf.includes(c)) return false
  // Whole valid UTF-8 decodes without U+FFFD unless it holds one; anything else takes the decoder.
  if (isUtf8(buf)) return !buf.includes(REPLACEMENT)
  // `stream: true` holds back a character cut at the end of a file's first bytes.
  return !new TextDecoder('utf-8').decode(buf, { stream: true }).includes('\uFFFD')
}

const GZIP = [0x1f, 0x8b]
const ZIP = [0x50, 0x4b, 0x03, 0x04]

function startsWith (head: Buffer | undefined, magic: number[]): head is Buffer {
  return head != null && head.length >= magic.length && magic.every((x, i) => head[i] === x)
}

/** gzip (RFC 1952): MTIME is bytes 4..7, little-endian; FLG bit 3 says a file name follows. */
const gzipMtime = (h: Buffer): number => h.readUInt32LE(4)
function gzipName (h: Buffer): string | undefined {
  if (((h[3] ?? 0) & 0x08) === 0) return undefined
  const end = h.indexOf(0, 10)
  return h.subarray(10, end === -1 ? h.length : end).toString('latin1')
}

/** zip local file header: DOS time at 10..11, date at 12..13 (first member only: cheap). */
function zipTime (h: Buffer): string {
  const time = h.readUInt16LE(10)
  const date = h.readUInt16LE(12)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${1980 + (date >> 9)}-${p((date >> 5) & 15)}-${p(date & 31)} ${p(time >> 11)}:${p((time >> 5) & 63)}:${p((time & 31) * 2)}`
}

/** .pyc (PEP 552): magic, flags (0 = timestamp-based), source mtime, source size. */
const pycFlags = (h: Buffer): number => h.readUInt32LE(4)
const pycSourceMtime = (h: Buffer): number => h.readUInt32LE(8)

/**
 * Formats whose header records what a second build cannot repeat: one table, read across
 * both sides in a diff (`both`) and on one side alone where only this node's own image is at
 * hand (`one`, src/node/compare/own-bytes.ts). `settles`: a format both sides share names the
 * cause even when the headers read the same (the difference is further in).
 */
interface HeaderFormat {
  id: CauseId
  /** Whether a file is of this format, from its path and first bytes. */
  is: (path: string, head: Buffer | undefined) => boolean
  /** Paths known to be of the format by name, in a diff, whatever their bytes (a .jar). */
  named?: RegExp
  both: (a: Buffer, b: Buffer) => string | undefined
  one: (head: Buffer) => string | undefined
  settles: boolean
}

export const HEADER_FORMATS: readonly HeaderFormat[] = [
  {
    id: 'python-bytecode',
    is: (path, head) => PYC.test(path) && head != null,
    both: (a, b) => {
      if (a.length < 16 || b.length < 16) return 'bytecode differs'
      const fa = pycFlags(a)
      const fb = pycFlags(b)
      if (fa === 0 && fb === 0) {
        const ma = pycSourceMtime(a)
        const mb = pycSourceMtime(b)
        return ma !== mb ? `timestamp-based .pyc, source mtime ${iso(ma)} vs ${iso(mb)}` : 'timestamp-based .pyc, same source mtime: the marshalled code differs'
      }
      return `hash-based .pyc (flags ${fa} vs ${fb}): the marshalled code differs`
    },
    one: (h) => {
      if (h.length < 16) return undefined
      const flags = pycFlags(h)
      return flags === 0 ? `timestamp-based .pyc, source mtime ${iso(pycSourceMtime(h))} on this side` : `hash-based .pyc (flags ${flags}): the marshalled code differs`
    },
    settles: true
  },
  {
    id: 'gzip-header',
    is: (_path, head) => startsWith(head, GZIP),
    both: (a, b) => {
      const parts: string[] = []
      if (gzipMtime(a) !== gzipMtime(b)) parts.push(`gzip header mtime ${gzipMtime(a) === 0 ? '0' : iso(gzipMtime(a))} vs ${gzipMtime(b) === 0 ? '0' : iso(gzipMtime(b))}`)
      if (gzipName(a) !== gzipName(b)) parts.push(`gzip header name ${gzipName(a) ?? '(none)'} vs ${gzipName(b) ?? '(none)'}`)
      return parts.length > 0 ? parts.join(', ') : undefined
    },
    one: (h) => {
      if (h.length < 10) return undefined
      if (gzipMtime(h) !== 0) return `gzip header mtime ${iso(gzipMtime(h))} on this side`
      return gzipName(h) !== undefined ? 'gzip header records the file name' : undefined
    },
    settles: false
  },
  {
    id: 'zip-times',
    is: (_path, head) => startsWith(head, ZIP),
    named: ZIP_NAME,
    both: (a, b) => {
      if (a.length < 14 || b.length < 14) return undefined
      return zipTime(a) !== zipTime(b) ? `first zip member time ${zipTime(a)} vs ${zipTime(b)}` : undefined
    },
    one: (h) => h.length >= 14 ? `first zip member time ${zipTime(h)} on this side` : undefined,
    settles: true
  }
]

/** Whether a JSON value is a date or time: a string holding one, or an integer Unix time. */
function timeValue (v: unknown): boolean {
  return (typeof v === 'string' && TIMESTAMP.test(v)) || (typeof v === 'number' && Number.isInteger(v) && TIMESTAMP.test(String(v)))
}

/**
 * Two JSON documents compared by their values, not their lines: a one-line file of megabytes
 * says which keys differ. Dates and times at every differing key are `embedded-timestamp`, a
 * temporary path `embedded-path`; otherwise `unknown`, naming the keys.
 */
function jsonCause (a: Buffer, b: Buffer): { id: CauseId, detail: string } | undefined {
  const da = parseJsonDocument(a.toString('utf8'))
  const db = da === undefined ? undefined : parseJsonDocument(b.toString('utf8'))
  if (da === undefined || db === undefined) return undefined
  const diffs = jsonChanges(da, db)
  if (diffs.length === 0) return { id: 'unknown', detail: 'the same JSON values, in another key order or spacing' }
  const n = diffs.length >= MAX_JSON_CHANGES ? `${MAX_JSON_CHANGES}+` : String(diffs.length)
  const keys = `${diffs.slice(0, 5).map(d => d.path).join(', ')}${diffs.length > 5 ? ', …' : ''}`
  if (diffs.every(d => (d.a === undefined || timeValue(d.a)) && (d.b === undefined || timeValue(d.b)))) {
    const forms = timeForms(diffs.flatMap(d => [d.a, d.b]).filter(v => v !== undefined).map(String))
    return { id: 'embedded-timestamp', detail: `JSON differs at ${n} key(s), each a date or time (${forms.join(', ')}): ${keys}` }
  }
  if (diffs.some(d => [d.a, d.b].some(v => typeof v === 'string' && TEMP_PATH.test(v)))) return { id: 'embedded-path', detail: `JSON differs at ${n} key(s), holding a temporary path: ${keys}` }
  return { id: 'unknown', detail: `JSON differs at ${n} key(s): ${keys}` }
}

function result (id: CauseId, detail?: string, diff?: string): Recognised {
  return { cause: causeRef(id), ...(detail != null ? { detail } : {}), ...(diff != null ? { diff } : {}) }
}

/**
 * Names the cause of one differing path from the evidence at hand: the kinds of change, the
 * file's first bytes, a small file's content and the facts of its layer. The path alone is used
 * where the name is unambiguous (/etc/machine-id); formats are recognised from their headers.
 */
export function recognise (c: ChangeEvidence, facts: LayerFacts = {}): Recognised {
  const { path, a, b } = c
  const kinds = new Set(c.kinds)
  const content = kinds.has('content') || kinds.has('added') || kinds.has('removed') || kinds.has('type')
  const both = a != null && b != null
  const complete = (a?.complete ?? true) && (b?.complete ?? true)
  const text = both && a.content != null && b.content != null && looksText(a.content) && looksText(b.content)
  const changes = text ? textChanges(path, a.content as Buffer, b.content as Buffer, complete) : undefined
  const diff = changes?.diff

  // A cache or log directory explains whatever differs inside it, however it differs.
  const eco = ecosystemCause(path)
  if (eco != null) return result(eco, undefined, diff)

  if (content || kinds.has('mtime')) {
    if (MACHINE_ID.test(path)) {
      const hex = (s?: SideEvidence): boolean => s?.content != null && /^[0-9a-f]{32}\n?$/.test(s.content.toString('latin1'))
      return result('machine-id', hex(a) && hex(b) ? 'two random 128-bit ids' : undefined)
    }
    if (FONT_CACHE.test(path)) return result('fontconfig-cache', sameHead(a, b, [0x04, 0xfc, 0x02, 0xfc]) ? 'fontconfig cache files (magic FC04FC02)' : undefined)
    if (AUX_CACHE.test(path)) return result('ldconfig-aux-cache')
    if (PACKAGE_LOGS.test(path)) return result('package-logs', undefined, diff)
    if (PACKAGE_BACKUPS.test(path)) return result('package-backups', undefined, diff)
    if (APT_LISTS.test(path)) return result('apt-lists')
  }
  if (content && facts.driftedPaths?.has(path) === true) return result('package-drift', undefined, diff)
  if (content && DPKG_DB.test(path) && facts.drift != null && facts.drift.size > 0) return result('package-drift', [...facts.drift].slice(0, 5).map(([n, v]) => `${n} ${v}`).join(', '), diff)

  if (kinds.has('type') && (a?.type === 'link' || b?.type === 'link')) return result('hard-link', `${a?.type ?? '(none)'} vs ${b?.type ?? '(none)'}`)
  if (kinds.has('added') || kinds.has('removed')) {
    if (PYC.test(path)) return result('python-bytecode', 'bytecode present in one build only')
    return result('file-set', kinds.has('added') ? 'only in b' : 'only in a')
  }
  if (kinds.has('content') && both) {
    for (const f of HEADER_FORMATS) {
      if (!(f.is(path, a.head) && f.is(path, b.head)) && !(f.named?.test(path) === true && a.head != null)) continue
      const detail = a.head != null && b.head != null ? f.both(a.head, b.head) : undefined
      if (detail != null || f.settles) return result(f.id, detail)
    }
    if (changes != null) {
      const json = complete ? jsonCause(a.content as Buffer, b.content as Buffer) : undefined
      if (json != null) return result(json.id, json.detail, diff)
      // Whole lines, however long: a time past any display cut still counts.
      const changed = changes.changed
      const forms = timeForms(changed)
      if (changed.length > 0 && changed.every(l => TIMESTAMP.test(l) || l.trim().length === 0)) return result('embedded-timestamp', `every differing line holds a date or time (${forms.join(', ')})`, diff)
      if (changed.some(l => TEMP_PATH.test(l))) return result('embedded-path', undefined, diff)
      if (forms.length > 0) return result('embedded-timestamp', `differing lines hold a date or time (${forms.join(', ')})`, diff)
      return result('unknown', 'text content differs', diff)
    }
    if (sameHead(a, b, GZIP)) return result('unknown', 'gzip headers are equal: the compressed data differs')
    return result('unknown', a.head != null && b.head != null && sameHead(a, b, [0x7f, 0x45, 0x4c, 0x46]) ? 'ELF binaries differ' : undefined)
  }
  if (kinds.has('link')) return result(a?.type === 'link' || b?.type === 'link' ? 'hard-link' : 'symlink-target', `${a?.linkname ?? '(none)'} vs ${b?.linkname ?? '(none)'}`)
  if (kinds.has('owner')) return result('owner')
  if (kinds.has('mode')) return result('mode')
  if (kinds.has('mtime') && a != null && b != null) {
    const late = facts.epoch != null && (a.mtime > facts.epoch || b.mtime > facts.epoch) ? ` (SOURCE_DATE_EPOCH ${iso(facts.epoch)})` : ''
    return result('mtime', `mtime ${iso(a.mtime)} vs ${iso(b.mtime)}${late}`)
  }
  if (kinds.has('order')) return result('file-order')
  return result('unknown')
}

const RANDOM_ID = /^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\n?$/

function firstLine (text: string, re: RegExp): string | undefined {
  const line = text.split('\n').find(l => re.test(l))
  return line == null ? undefined : (line.length > 120 ? line.slice(0, 119) + '…' : line)
}

/**
 * The cause one side's bytes show for a file whose content differs, with what showed it;
 * undefined where they show nothing. Only what cannot be the same in a second build counts:
 * a header of HEADER_FORMATS that records a time or a name, and, in a text file of the same
 * size on both sides, a random id or a date.
 */
export function recogniseOwnBytes (path: string, head: Buffer, content: { content: Buffer, complete: boolean } | undefined, sameSize: boolean): { id: CauseId, detail: string } | undefined {
  const format = HEADER_FORMATS.find(f => f.is(path, head))
  if (format != null) {
    const detail = format.one(head)
    if (detail != null) return { id: format.id, detail }
    // A header that records nothing explains nothing; its data is not text.
    if (format.id === 'gzip-header') return undefined
  }
  // Text is judged only where both sides are the same size: a stamp replaced by another.
  if (content == null || !sameSize || !looksText(content.content)) return undefined
  const text = content.content.toString('utf8')
  if (content.complete && RANDOM_ID.test(text)) return { id: 'machine-id', detail: 'holds a random 128-bit id, as /etc/machine-id does' }
  const stamp = firstLine(text, TIMESTAMP)
  if (stamp != null) return { id: 'embedded-timestamp', detail: `holds a date or time: ${stamp}` }
  const temp = firstLine(text, TEMP_PATH)
  if (temp != null) return { id: 'embedded-path', detail: `holds a temporary path: ${temp}` }
  return undefined
}
