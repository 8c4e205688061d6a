/**
 * Token buckets per key: `burst` messages at once, refilled at `perMinute`. Bounded in the
 * number of keys it tracks, so a flood of fresh keys cannot grow it without limit.
 */
export interface RateLimiter {
  /** Takes one token for `key`; false when the key is over its rate. */
  take: (key: string, now?: number) => boolean
  /** Tokens `key` has now (a key not tracked has the full burst). */
  tokens: (key: string, now?: number) => number
}

export function createRateLimiter (init: { perMinute: number, burst: number, maxKeys?: number }): RateLimiter {
  const buckets = new Map<string, { tokens: number, at: number }>()
  const maxKeys = init.maxKeys ?? 10_000
  const rate = init.perMinute / 60_000
  return {
    take (key, now = Date.now()) {
      let b = buckets.get(key)
      if (b == null) {
        if (buckets.size >= maxKeys) {
          // Drop the oldest tracked key (Map keeps insertion order).
          const oldest = buckets.keys().next().value
          if (oldest != null) buckets.delete(oldest)
        }
        b = { tokens: init.burst, at: now }
        buckets.set(key, b)
      }
      b.tokens = Math.min(init.burst, b.tokens + (now - b.at) * rate)
      b.at = now
      if (b.tokens < 1) return false
      b.tokens -= 1
      return true
    },
    tokens (key, now = Date.now()) {
      const b = buckets.get(key)
      return b == null ? init.burst : Math.min(init.burst, b.tokens + (now - b.at) * rate)
    }
  }
}
