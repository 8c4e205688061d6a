import { LimitError, ValidationError } from '../../protocol/errors.js'
import { HTTP_LIMITS } from './limits.js'

/**
 * Query parameters of one request, checked against a list of names the route accepts.
 * Unknown or repeated parameters are errors rather than ignored: a misspelt filter that
 * silently matched everything would mislead a client.
 */
export class Query {
  private readonly values = new Map<string, string>()

  constructor (params: URLSearchParams, allowed: readonly string[]) {
    const count = [...params.keys()].length
    if (count > HTTP_LIMITS.maxQueryParams) throw new LimitError('query parameters', HTTP_LIMITS.maxQueryParams, count)
    for (const [name, value] of params) {
      if (!allowed.includes(name)) {
        throw new ValidationError(name, `unknown query parameter${allowed.length > 0 ? `; this endpoint accepts ${allowed.join(', ')}` : ''}`)
      }
      if (this.values.has(name)) throw new ValidationError(name, 'given more than once')
      if (value.length > HTTP_LIMITS.maxParamLength) throw new LimitError(name, HTTP_LIMITS.maxParamLength, value.length)
      this.values.set(name, value)
    }
  }

  /** A non-empty string, or undefined when absent. */
  string (name: string, pattern?: RegExp, what?: string): string | undefined {
    const v = this.values.get(name)
    if (v === undefined) return undefined
    if (v.length === 0) throw new ValidationError(name, 'must not be empty')
    if (pattern != null && !pattern.test(v)) throw new ValidationError(name, `must be ${what ?? `like ${String(pattern)}`}`)
    return v
  }

  /** A non-negative safe integer in decimal, or `fallback` when absent. */
  integer (name: string, fallback: number, max?: number): number {
    const v = this.values.get(name)
    if (v === undefined) return fallback
    if (!/^[0-9]{1,16}$/.test(v)) throw new ValidationError(name, 'must be a non-negative integer')
    const n = Number(v)
    if (!Number.isSafeInteger(n)) throw new ValidationError(name, 'must be a non-negative integer')
    if (max !== undefined && n > max) throw new LimitError(name, max, n)
    return n
  }
}

/** A repository URL or path; printable, no whitespace. */
export const REPOSITORY_PATTERN = /^[\x21-\x7e]{1,512}$/
/** A key id: printable, no whitespace. */
export const KEY_ID_PATTERN = /^[\x21-\x7e]{1,512}$/
