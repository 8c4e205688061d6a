import type { Logger } from '../logger.js'
import { parseChallenge, createTokenCache, DEFAULT_TOKEN_LIFETIME_S } from './auth.js'
import type { TokenCache } from './auth.js'
import { readLimited } from './body.js'
import { RegistryAuthError, RegistryUnreachableError } from './errors.js'
import { isLoopbackHost } from './reference.js'
import type { ImageReference } from './reference.js'

export interface TransportInit {
  timeoutMs: number
  insecure: boolean | ((host: string) => boolean)
  userAgent: string
  log: Logger
}

export interface RegistryTransport {
  /**
   * A request to `/v2/<repository>/<path>` of the reference's registry, with an anonymous
   * bearer token when the registry asks for one. Network failures, timeouts, 5xx and 429
   * become RegistryUnreachableError; refused authentication becomes RegistryAuthError.
   * Other statuses (404 included) are the caller's to read.
   */
  request: (ref: ImageReference, method: 'GET' | 'HEAD', path: string, accept?: string) => Promise<Response>
}

const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024

function describe (err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out'
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    if (cause != null) return cause.code ?? cause.message ?? err.message
    return err.message
  }
  return String(err)
}

export function createRegistryTransport (init: TransportInit): RegistryTransport {
  const tokens: TokenCache = createTokenCache()
  const { timeoutMs, userAgent, log } = init

  const plainHttp = (host: string): boolean =>
    typeof init.insecure === 'function' ? init.insecure(host) : init.insecure || isLoopbackHost(host)

  async function send (ref: ImageReference, url: string, method: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(url, { method, headers, redirect: 'follow', signal: AbortSignal.timeout(timeoutMs) })
    } catch (err) {
      throw new RegistryUnreachableError(ref.canonical, `${method} ${url}: ${describe(err)}`, { cause: err })
    }
  }

  async function fetchToken (ref: ImageReference, params: Record<string, string>, scope: string): Promise<{ token: string, expiresIn: number }> {
    const realm = params.realm
    if (realm == null || realm === '') throw new RegistryAuthError(ref.canonical, 'bearer challenge without a realm')
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new RegistryAuthError(ref.canonical, `token realm ${JSON.stringify(realm)} is not a URL`)
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && plainHttp(url.host))) {
      throw new RegistryAuthError(ref.canonical, `token realm ${realm} is not HTTPS`)
    }
    if (params.service != null) url.searchParams.set('service', params.service)
    url.searchParams.set('scope', scope)
    const res = await send(ref, url.toString(), 'GET', { 'user-agent': userAgent, accept: 'application/json' })
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      if (res.status >= 500 || res.status === 429) throw new RegistryUnreachableError(ref.canonical, `token realm ${url.origin} answered HTTP ${res.status}`)
      throw new RegistryAuthError(ref.canonical, `token realm ${url.origin} refused an anonymous token for ${scope} (HTTP ${res.status})`)
    }
    const body = await readLimited(res, MAX_TOKEN_RESPONSE_BYTES, 'token response')
    let parsed: { token?: unknown, access_token?: unknown, expires_in?: unknown }
    try {
      parsed = JSON.parse(new TextDecoder().decode(body))
    } catch {
      throw new RegistryAuthError(ref.canonical, `token realm ${url.origin} answered something other than JSON`)
    }
    const token = typeof parsed.token === 'string' && parsed.token !== '' ? parsed.token : parsed.access_token
    if (typeof token !== 'string' || token === '') throw new RegistryAuthError(ref.canonical, `token realm ${url.origin} answered without a token`)
    const expiresIn = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : DEFAULT_TOKEN_LIFETIME_S
    return { token, expiresIn }
  }

  return {
    async request (ref, method, path, accept) {
      const scheme = plainHttp(ref.apiHost) ? 'http' : 'https'
      const url = `${scheme}://${ref.apiHost}/v2/${ref.repository}/${path}`
      // Tokens are cached per registry and pull scope, the only scope this client asks for.
      const scope = `repository:${ref.repository}:pull`
      const key = `${ref.apiHost} ${scope}`
      const headers: Record<string, string> = { 'user-agent': userAgent }
      if (accept != null) headers.accept = accept
      const cached = tokens.get(key)
      if (cached != null) headers.authorization = `Bearer ${cached}`

      let res = await send(ref, url, method, headers)
      if (res.status === 401) {
        await res.body?.cancel().catch(() => {})
        const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '')
        if (challenge == null) throw new RegistryAuthError(ref.canonical, `${method} ${url}: HTTP 401 without a WWW-Authenticate challenge`)
        if (challenge.scheme === 'basic') throw new RegistryAuthError(ref.canonical, 'the registry asks for Basic credentials; only anonymous pulls are supported')
        if (challenge.scheme !== 'bearer') throw new RegistryAuthError(ref.canonical, `unsupported authentication scheme ${JSON.stringify(challenge.scheme)}`)
        const { token, expiresIn } = await fetchToken(ref, challenge.params, challenge.params.scope ?? scope)
        tokens.set(key, token, expiresIn)
        log.debug({ registry: ref.apiHost, scope, expiresIn }, 'bearer token obtained')
        res = await send(ref, url, method, { ...headers, authorization: `Bearer ${token}` })
        if (res.status === 401) {
          await res.body?.cancel().catch(() => {})
          throw new RegistryAuthError(ref.canonical, `the registry refused the token it asked for (${method} ${path})`)
        }
      }
      if (res.status === 403) {
        await res.body?.cancel().catch(() => {})
        throw new RegistryAuthError(ref.canonical, `access denied (HTTP 403 on ${method} ${path})`)
      }
      if (res.status >= 500 || res.status === 429) {
        await res.body?.cancel().catch(() => {})
        throw new RegistryUnreachableError(ref.canonical, `HTTP ${res.status} on ${method} ${path}`)
      }
      return res
    }
  }
}
