import type { Prepared } from './respond.js'

/**
 * Finished responses, kept while the store has not changed: most requests to a public feed
 * repeat (pollers, dashboards), and the store is append-only, so "nothing arrived since"
 * proves an answer is still right. Bounded by entries and bytes; least recently used goes first.
 */
export interface ResponseCache {
  /** The response for `key` computed at store version `version`, if still valid. */
  get (key: string, version: number): Prepared | undefined
  /** The entry for `key` if it is immutable (no store version needed to trust it). */
  immutable (key: string): Prepared | undefined
  /** `immutable`: valid at every later version too (a full page of the append-only log). */
  set (key: string, version: number, value: Prepared, immutable?: boolean): void
}

export interface ResponseCacheInit {
  maxEntries?: number
  maxBytes?: number
  /** Longest an entry is reused even when the store has not changed, ms (published digests change outside the store). */
  maxAgeMs?: number
}

interface Entry { value: Prepared, version: number, immutable: boolean, at: number }

export function createResponseCache (init: ResponseCacheInit = {}): ResponseCache {
  const maxEntries = init.maxEntries ?? 512
  const maxBytes = init.maxBytes ?? 64 * 1024 * 1024
  const maxAge = init.maxAgeMs ?? Infinity
  const entries = new Map<string, Entry>()
  let bytes = 0

  function drop (key: string): void {
    const e = entries.get(key)
    if (e === undefined) return
    entries.delete(key)
    bytes -= e.value.body.length
  }

  return {
    get (key, version) {
      const e = entries.get(key)
      if (e === undefined) return undefined
      if ((!e.immutable && e.version !== version) || Date.now() - e.at > maxAge) {
        drop(key)
        return undefined
      }
      entries.delete(key)
      entries.set(key, e)
      return e.value
    },

    immutable (key) {
      const e = entries.get(key)
      if (e === undefined || !e.immutable) return undefined
      entries.delete(key)
      entries.set(key, e)
      return e.value
    },

    set (key, version, value, immutable = false) {
      if (value.body.length > maxBytes / 4) return
      drop(key)
      entries.set(key, { value, version, immutable, at: Date.now() })
      bytes += value.body.length
      for (const k of entries.keys()) {
        if (entries.size <= maxEntries && bytes <= maxBytes) break
        drop(k)
      }
    }
  }
}
