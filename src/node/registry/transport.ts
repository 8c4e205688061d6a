import { TOOL_NAME, TOOL_VERSION } from '../../tool.js'
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
  /** Credentials for a registry host (`host[:port]` as in the reference); anonymous when undefined. */
  credentials?: (registry: string) => RegistryCredentials | undefined
}

/** A user name and password (or token) for Basic authentication, or for a token realm. */
export interface RegistryCredentials {
  username: string
  password: string
}

export type RegistryMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

export interface RequestOptions {
  body?: Uint8Array
  contentType?: string
  /** Ask for push rights (`pull,push` scope) instead of pull only. */
  push?: boolean
  /** An absolute URL on the registry (an upload `Location`) instead of `/v2/<repository>/<path>`. */
  url?: string
}

export interface RegistryTransport {
  /**
   * A request to `/v2/<repository>/<path>` of the reference's registry, with an anonymous
   * bearer token when the registry asks for one. Network failures, timeouts, 5xx and 429
   * become RegistryUnreachableError; refused authentication becomes RegistryAuthError.
   * Other statuses (404 included) are the caller's to read.
   */
  /** `http(s)://host[:port]/` of the reference's registry, for resolving relative `Location`s. */
  baseUrl: (ref: ImageReference) => string
  request: (ref: ImageReference, method: RegistryMethod, path: string, accept?: string, opts?: RequestOptions) => Promise<Response>
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

/** How a client or writer reaches registries; `transportFor` fills in the defaults. */
export interface RegistryAccessInit {
  /** Per request, body included. Default 30 s. */
  timeoutMs?: number
  /**
   * Plain HTTP instead of HTTPS, for all hosts or those the function accepts. Default: only
   * loopback hosts (`localhost`, `127.0.0.0/8`, `::1`), as Docker does.
   */
  insecure?: boolean | ((host: string) => boolean)
  userAgent?: string
  /** Credentials per registry host; anonymous where undefined. */
  credentials?: (registry: string) => RegistryCredentials | undefined
}

export function transportFor (init: RegistryAccessInit, log: Logger): RegistryTransport {
  return createRegistryTransport({
    timeoutMs: init.timeoutMs ?? 30_000,
    insecure: init.insecure ?? false,
    userAgent: init.userAgent ?? `${TOOL_NAME}/${TOOL_VERSION}`,
    log,
    ...(init.credentials != null ? { credentials: init.credentials } : {})
  })
}

export function createRegistryTransport (init: TransportInit): RegistryTransport {
  const tokens: TokenCache = createTokenCache()
  /** Hosts that answered with a Basic challenge: later requests send the credentials up front. */
  const basicHosts = new Set<string>()
  const { timeoutMs, userAgent, log } = init

  const plainHttp = (host: string): boolean =>
    typeof init.insecure === 'function' ? init.insecure(host) : init.insecure || isLoopbackHost(host)

  async function send (ref: ImageReference, url: string, method: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response> {
    try {
      return await fetch(url, { method, headers, redirect: 'follow', signal: AbortSignal.timeout(timeoutMs), ...(body != null ? { body: new Uint8Array(body) } : {}) })
    } catch (err) {
      throw new RegistryUnreachableError(ref.canonical, `${method} ${url}: ${describe(err)}`, { cause: err })
    }
  }

  const basic = (c: RegistryCredentials): string => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`

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
    const creds = init.credentials?.(ref.registry)
    const tokenHeaders: Record<string, string> = { 'user-agent': userAgent, accept: 'application/json' }
    if (creds != null) tokenHeaders.authorization = basic(creds)
    const res = await send(ref, url.toString(), 'GET', tokenHeaders)
    if (!res.ok) {
      await res.body?.cancel().catch(() => {})
      if (res.status >= 500 || res.status === 429) throw new RegistryUnreachableError(ref.canonical, `token realm ${url.origin} answered HTTP ${res.status}`)
      throw new RegistryAuthError(ref.canonical, `token realm ${url.origin} refused ${creds != null ? `a token for ${creds.username}` : 'an anonymous token'} for ${scope} (HTTP ${res.status})`)
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
    baseUrl: ref => `${plainHttp(ref.apiHost) ? 'http' : 'https'}://${ref.apiHost}/`,
    async request (ref, method, path, accept, opts = {}) {
      const scheme = plainHttp(ref.apiHost) ? 'http' : 'https'
      const url = opts.url ?? `${scheme}://${ref.apiHost}/v2/${ref.repository}/${path}`
      // Tokens are cached per registry and scope: pull, or pull and push for writes.
      const scope = `repository:${ref.repository}:${opts.push === true ? 'pull,push' : 'pull'}`
      const key = `${ref.apiHost} ${scope}`
      const headers: Record<string, string> = { 'user-agent': userAgent }
      if (accept != null) headers.accept = accept
      if (opts.contentType != null) headers['content-type'] = opts.contentType
      const cached = tokens.get(key)
      if (cached != null) headers.authorization = `Bearer ${cached}`
      const creds = init.credentials?.(ref.registry)
      // Basic credentials go with the first request once the registry has asked for them.
      if (cached == null && creds != null && basicHosts.has(ref.apiHost)) headers.authorization = basic(creds)

      let res = await send(ref, url, method, headers, opts.body)
      if (res.status === 401) {
        await res.body?.cancel().catch(() => {})
        const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '')
        if (challenge == null) throw new RegistryAuthError(ref.canonical, `${method} ${url}: HTTP 401 without a WWW-Authenticate challenge`)
        if (challenge.scheme === 'basic') {
          if (creds == null) throw new RegistryAuthError(ref.canonical, 'the registry asks for Basic credentials and none were given (--registry-auth)')
          if (headers.authorization?.startsWith('Basic ') === true) throw new RegistryAuthError(ref.canonical, `the registry refused the credentials of ${creds.username} (${method} ${path})`)
          basicHosts.add(ref.apiHost)
          res = await send(ref, url, method, { ...headers, authorization: basic(creds) }, opts.body)
          if (res.status === 401) {
            await res.body?.cancel().catch(() => {})
            throw new RegistryAuthError(ref.canonical, `the registry refused the credentials of ${creds.username} (${method} ${path})`)
          }
        } else if (challenge.scheme !== 'bearer') {
          throw new RegistryAuthError(ref.canonical, `unsupported authentication scheme ${JSON.stringify(challenge.scheme)}`)
        } else {
          const { token, expiresIn } = await fetchToken(ref, challenge.params, challenge.params.scope ?? scope)
          tokens.set(key, token, expiresIn)
          log.debug({ registry: ref.apiHost, scope, expiresIn }, 'bearer token obtained')
          res = await send(ref, url, method, { ...headers, authorization: `Bearer ${token}` }, opts.body)
        }
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
