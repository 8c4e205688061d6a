/**
 * C2SP tlog-tiles paths and entry bundles. Tiles are 8 levels high and 256 hashes wide;
 * a tile index is written as zero-padded 3-digit path elements, all but the last prefixed
 * with `x` (1234067 → `x001/x234/067`); a partial tile adds `.p/<width>`.
 */
import { LimitError, ValidationError } from '../errors.js'

export const TILE_HEIGHT = 8
export const TILE_WIDTH = 256

/** What a tile path names: a hash tile of `level`, or an entry bundle (`level: 'entries'`). */
export interface TileRef {
  level: number | 'entries'
  index: number
  /** 256 for a full tile, 1 to 255 for a partial one. */
  width: number
}

export function encodeTileIndex (index: number): string {
  if (!Number.isSafeInteger(index) || index < 0) throw new ValidationError('tile index', `must be a non-negative integer, got ${String(index)}`)
  let digits = String(index)
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0')
  const parts: string[] = []
  for (let i = 0; i < digits.length; i += 3) parts.push(digits.slice(i, i + 3))
  return parts.map((p, i) => i < parts.length - 1 ? `x${p}` : p).join('/')
}

/** The path of a tile below the log prefix, e.g. `tile/0/x001/234.p/7`. */
export function tilePath (t: TileRef): string {
  const suffix = t.width === TILE_WIDTH ? '' : `.p/${t.width}`
  return `tile/${t.level}/${encodeTileIndex(t.index)}${suffix}`
}

const TILE_PATH = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/){0,5}[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/

/** Parses a tile path (without the log prefix); undefined when it names no tile. */
export function parseTilePath (path: string): TileRef | undefined {
  const m = TILE_PATH.exec(path)
  if (m === null) return undefined
  const level = m[1] === 'entries' ? 'entries' : Number(m[1])
  if (level !== 'entries' && level > 63) return undefined
  const index = Number((m[2] ?? '').replace(/[x/]/g, ''))
  const width = m[3] === undefined ? TILE_WIDTH : Number(m[3])
  if ((m[3] !== undefined && width >= TILE_WIDTH) || !Number.isSafeInteger(index)) return undefined
  // One spelling per tile: no extra leading groups such as `x000/`.
  if (encodeTileIndex(index) !== m[2]) return undefined
  return { level, index, width }
}

/** Hashes at tile level `level` in a tree of `size`: each covers 256^level entries. */
export function tileLevelCount (level: number, size: number): number {
  return Math.floor(size / TILE_WIDTH ** level)
}

/** Width of tile `index` at `level` in a tree of `size` (0 when it has no hash yet). */
export function tileWidthAt (level: number, index: number, size: number): number {
  return Math.max(0, Math.min(TILE_WIDTH, tileLevelCount(level, size) - index * TILE_WIDTH))
}

/** Largest entry an entry bundle can carry: its length is a big-endian uint16. */
export const MAX_ENTRY_BYTES = 0xffff

/** Entries as a C2SP entry bundle: each one a big-endian uint16 length, then its bytes. */
export function encodeEntryBundle (entries: readonly Uint8Array[]): Buffer {
  let total = 0
  for (const e of entries) {
    if (e.byteLength > MAX_ENTRY_BYTES) throw new LimitError('tlog entry', MAX_ENTRY_BYTES, e.byteLength)
    total += 2 + e.byteLength
  }
  const out = Buffer.allocUnsafe(total)
  let off = 0
  for (const e of entries) {
    out.writeUInt16BE(e.byteLength, off)
    out.set(e, off + 2)
    off += 2 + e.byteLength
  }
  return out
}

/** The entries of a bundle; throws when it is cut short or holds more than `maxEntries`. */
export function decodeEntryBundle (bundle: Uint8Array, maxEntries = TILE_WIDTH): Buffer[] {
  const buf = Buffer.from(bundle.buffer, bundle.byteOffset, bundle.byteLength)
  const out: Buffer[] = []
  let off = 0
  while (off < buf.byteLength) {
    if (out.length >= maxEntries) throw new LimitError('entry bundle entries', maxEntries, out.length + 1)
    if (off + 2 > buf.byteLength) throw new ValidationError('entry bundle', `cut short in a length prefix at byte ${off}`)
    const n = buf.readUInt16BE(off)
    if (off + 2 + n > buf.byteLength) throw new ValidationError('entry bundle', `entry ${out.length} claims ${n} bytes but only ${buf.byteLength - off - 2} remain`)
    out.push(buf.subarray(off + 2, off + 2 + n))
    off += 2 + n
  }
  return out
}
