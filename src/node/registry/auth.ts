/** A parsed `WWW-Authenticate` challenge (RFC 7235): the scheme and its auth-params. */
export interface Challenge {
  scheme: string
  params: Record<string, string>
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header. Quoted values may hold commas
 * (`scope="repository:a:pull,push"`), so this walks the string rather than splitting it.
 */
export function parseChallenge (header: string): Challenge | undefined {
  const s = header.trim()
  const m = /^([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/.exec(s)
  if (m == null) return undefined
  const scheme = m[1] as string
  const params: Record<string, string> = {}
  let i = m[0].length
  while (i < s.length) {
    const km = /^\s*,?\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(s.slice(i))
    if (km == null) break
    i += km[0].length
    let value = ''
    if (s[i] === '"') {
      i++
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++
        value += s[i]
        i++
      }
      i++ // closing quote
    } else {
      const vm = /^[^,\s]*/.exec(s.slice(i))
      value = vm?.[0] ?? ''
      i += value.length
    }
    params[(km[1] as string).toLowerCase()] = value
  }
  return { scheme: scheme.toLowerCase(), params }
}

interface CachedToken {
  token: string
  expiresAt: number
}

/** Bearer tokens by key (registry host and scope), dropped a little before they expire. */
export interface TokenCache {
  get: (key: string, now?: number) => string | undefined
  set: (key: string, token: string, expiresInSeconds: number, now?: number) => void
}

/** Registries must accept a token for at least 60 s when they give no `expires_in` (distribution token spec). */
export const DEFAULT_TOKEN_LIFETIME_S = 60
/** Refresh this long before expiry so a token does not lapse in flight. */
const EXPIRY_MARGIN_MS = 5_000
/** Bound the cache: one entry per repository asked about. */
const MAX_CACHED_TOKENS = 1024

export function createTokenCache (): TokenCache {
  const tokens = new Map<string, CachedToken>()
  return {
    get (key, now = Date.now()) {
      const t = tokens.get(key)
      if (t == null) return undefined
      if (t.expiresAt <= now) {
        tokens.delete(key)
        return undefined
      }
      return t.token
    },
    set (key, token, expiresInSeconds, now = Date.now()) {
      if (tokens.size >= MAX_CACHED_TOKENS) {
        const oldest = tokens.keys().next()
        if (oldest.done !== true) tokens.delete(oldest.value)
      }
      const lifetime = Math.max(0, expiresInSeconds * 1000 - EXPIRY_MARGIN_MS)
      tokens.set(key, { token, expiresAt: now + lifetime })
    }
  }
}
