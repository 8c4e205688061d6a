import type { Level } from 'level'
import { LimitError, ValidationError } from '../../protocol/errors.js'
import type { Logger } from '../logger.js'
import { StoreClosedError } from './errors.js'
import { STORE_LIMITS } from './limits.js'

/** The one database a store opens; every sub-store is a set of its sublevels. */
export type Database = Level<string, string>

function openSublevel (db: Database, name: string) {
  return db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
}
export type Sublevel = ReturnType<typeof openSublevel>

/** Index keys join parts with NUL, which no id, key id, repository or tag contains. */
export const SEP = '\x00'

/**
 * What the sub-stores of one store share: the database, its write queue (writes are serialized
 * so counters are allocated atomically), the closed flag and the set of damaged entries seen.
 */
export class StoreContext {
  private writeChain: Promise<unknown> = Promise.resolve()
  private closed = false
  /** Keys of entries that failed to decode; a set so a re-read does not count twice. */
  readonly damagedKeys = new Set<string>()

  constructor (readonly db: Database, readonly log: Logger) {}

  sublevel (name: string): Sublevel {
    return openSublevel(this.db, name)
  }

  /** Runs `fn` after every write queued before it: cursor allocation and "already stored?" checks must not interleave. */
  serialize<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.writeChain.then(fn, fn)
    this.writeChain = run.catch(() => undefined)
    return run
  }

  /** A write: refused once the store is closed, checked again when its turn comes. */
  async write<T> (fn: () => Promise<T>): Promise<T> {
    this.assertOpen()
    return await this.serialize(async () => {
      this.assertOpen()
      return await fn()
    })
  }

  assertOpen (): void {
    if (this.closed) throw new StoreClosedError('the store is closed')
  }

  /** Lets acknowledged and queued writes finish, then closes the database. */
  async close (): Promise<void> {
    if (this.closed) return
    await this.writeChain
    this.closed = true
    await this.db.close()
  }

  /** Reports a damaged entry once and skips it. */
  damaged (where: string, key: string): undefined {
    const k = `${where}:${key}`
    if (!this.damagedKeys.has(k)) {
      this.damagedKeys.add(k)
      this.log.warn({ sublevel: where, key }, 'damaged store entry skipped')
    }
    return undefined
  }

  parse<T> (where: string, key: string, text: string | undefined): T | undefined {
    if (text == null) return undefined
    try {
      return JSON.parse(text) as T
    } catch {
      return this.damaged(where, key)
    }
  }

  async readCounter (meta: Sublevel, key: string): Promise<number> {
    const v = await meta.get(key)
    const n = v == null ? 0 : Number(v)
    return Number.isSafeInteger(n) && n >= 0 ? n : 0
  }
}

/** Fixed-width counters sort lexicographically in numeric order. */
export function cursorKey (cursor: number): string {
  return cursor.toString().padStart(16, '0')
}

export function checkKey (field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new ValidationError(field, 'must be a non-empty string')
  if (value.length > STORE_LIMITS.maxKeyLength) throw new LimitError(field, STORE_LIMITS.maxKeyLength, value.length)
  if (value.includes(SEP)) throw new ValidationError(field, 'must not contain NUL')
  return value
}

export function clampLimit (limit: number, max: number): number {
  if (!Number.isFinite(limit) || limit <= 0) return 0
  return Math.min(Math.floor(limit), max)
}

/** Upper bound for a prefix range. */
export function prefixRange (prefix: string): { gte: string, lt: string } {
  return { gte: prefix, lt: prefix + '\xff' }
}

/** The values (ids) of an index range, at most `limit`. */
export async function idsInRange (level: Sublevel, range: { gte?: string, gt?: string, lt: string, reverse?: boolean }, limit: number): Promise<string[]> {
  const ids: string[] = []
  for await (const id of level.values({ ...range, limit })) ids.push(id)
  return ids
}
