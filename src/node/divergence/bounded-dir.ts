import { readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ValidationError } from '../../protocol/errors.js'

/** Bounds on what a keeper directory holds. */
export interface DirBounds {
  /** Files kept; the oldest go first. */
  maxCount: number
  /** Files older than this go. */
  maxAgeMs: number
  /** Bytes of files kept. */
  maxBytes: number
}

/** The bounds of `init` over `defaults`, each a positive integer, or a ValidationError naming `field.bound`. */
export function boundsOf<T extends DirBounds> (field: string, defaults: T, init: Partial<DirBounds>): DirBounds {
  const b: DirBounds = {
    maxCount: init.maxCount ?? defaults.maxCount,
    maxAgeMs: init.maxAgeMs ?? defaults.maxAgeMs,
    maxBytes: init.maxBytes ?? defaults.maxBytes
  }
  for (const [k, v] of Object.entries(b)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new ValidationError(`${field}.${k}`, `must be a positive integer, got ${String(v)}`)
  }
  return b
}

/**
 * Applies `bounds` to the files of `dir` whose names match `pattern`: newest first by mtime,
 * a file goes when it is past the count, past the age or would take the total past the bytes.
 * Names matching `stale` (a copy a killed process left half-written) always go. Returns the
 * names removed.
 */
export async function pruneDir (dir: string, pattern: RegExp, bounds: DirBounds, stale?: RegExp): Promise<string[]> {
  let names: string[]
  try { names = await readdir(dir) } catch { return [] }
  const removed: string[] = []
  for (const n of names) {
    if (stale?.test(n) === true) { await rm(join(dir, n), { force: true }); removed.push(n) }
  }
  const files = (await Promise.all(names.filter(n => pattern.test(n)).map(async n => {
    const s = await stat(join(dir, n)).catch(() => undefined)
    return s == null ? undefined : { n, at: s.mtimeMs, size: s.size }
  }))).filter(f => f != null).sort((a, b) => b.at - a.at)
  const now = Date.now()
  let bytes = 0
  for (const [i, f] of files.entries()) {
    bytes += f.size
    if (i >= bounds.maxCount || now - f.at > bounds.maxAgeMs || bytes > bounds.maxBytes) {
      await rm(join(dir, f.n), { force: true })
      removed.push(f.n)
    }
  }
  return removed
}
