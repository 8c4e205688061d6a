import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import formatsModule from 'ajv-formats'
import { LimitError, ValidationError } from './errors.js'
import { COMMIT, DIGEST } from './patterns.js'
import { HEX64 } from './schema-parts.js'

// ajv-formats is CommonJS: under NodeNext its default import is the module object.
const addFormats = ((formatsModule as unknown as { default?: unknown }).default ?? formatsModule) as unknown as typeof formatsModule.default

/**
 * The one ajv instance of the protocol. Validators are compiled once at module load:
 * compiling per message would cost more than the signature check.
 */
// `unicode: false`: string limits count UTF-16 code units (as LIMITS documents), which is a
// plain `.length` instead of a per-character loop on every string of every message.
// `unicodeRegExp: false`: every pattern is ASCII, and non-`u` regexps run faster.
// `logger: false` keeps ajv's deprecation notice for that option off the CLI's stderr;
// schema mistakes still throw under `strict`.
export const ajv = new Ajv({ allErrors: false, strict: true, strictTuples: false, verbose: true, unicode: false, unicodeRegExp: false, logger: false })
addFormats(ajv, ['date-time'])

// Lowercase hex through a lookup table: every claim carries a dozen digests, and this is
// cheaper than a regexp or a round trip through Buffer's hex decoder on this hot path.
// A code unit past the table reads as undefined, so anything outside ASCII fails too.
const HEX = new Uint8Array(128)
for (const c of '0123456789abcdef') HEX[c.charCodeAt(0)] = 1
function lowerHex (s: string, bytes: number, offset = 0): boolean {
  if (s.length !== offset + 2 * bytes) return false
  for (let i = offset; i < s.length; i++) if (HEX[s.charCodeAt(i)] !== 1) return false
  return true
}

/** Formats with the pattern each one implements (errors quote the pattern). */
const HEX_FORMATS = {
  'hex-sha256': { pattern: HEX64, validate: (s: string) => lowerHex(s, 32) },
  'hex-sha1': { pattern: COMMIT, validate: (s: string) => lowerHex(s, 20) },
  'sha256-digest': { pattern: DIGEST, validate: (s: string) => s.startsWith('sha256:') && lowerHex(s, 32, 7) }
} as const
for (const [name, f] of Object.entries(HEX_FORMATS)) ajv.addFormat(name, { type: 'string', validate: f.validate })

/** `/predicate/subject/0/name` → `predicate.subject[0].name` */
export function jsonPath (instancePath: string, prefix = ''): string {
  let out = prefix
  for (const raw of instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    if (/^\d+$/.test(part)) out += `[${part}]`
    else out += out === '' ? part : `.${part}`
  }
  return out
}

function join (base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`
}

/** The first ajv error as a ValidationError (or LimitError for a size/count limit) naming the JSON path. */
export function schemaError (err: ErrorObject, prefix = ''): ValidationError | LimitError {
  const field = jsonPath(err.instancePath, prefix)
  const params = err.params as Record<string, unknown>
  switch (err.keyword) {
    case 'required':
      return new ValidationError(join(field, String(params.missingProperty)), 'missing')
    case 'additionalProperties':
      return new ValidationError(join(field, String(params.additionalProperty)), 'unknown field')
    case 'maxLength':
      return new LimitError(field, Number(params.limit), typeof err.data === 'string' ? err.data.length : Number.NaN)
    case 'maxItems':
      return new LimitError(field, Number(params.limit), Array.isArray(err.data) ? err.data.length : Number.NaN)
    case 'format': {
      const hex = HEX_FORMATS[params.format as keyof typeof HEX_FORMATS] as { pattern: string } | undefined
      if (hex !== undefined) return new ValidationError(field === '' ? '(root)' : field, `${JSON.stringify(err.data)} does not match ${hex.pattern}`)
      return new ValidationError(field === '' ? '(root)' : field, `not a valid ${String(params.format)} (RFC 3339, e.g. 2026-01-02T03:04:05Z)`)
    }
    case 'pattern':
      return new ValidationError(field === '' ? '(root)' : field, `${JSON.stringify(err.data)} does not match ${String(params.pattern)}`)
    case 'const':
      return new ValidationError(field === '' ? '(root)' : field, `must be ${JSON.stringify(params.allowedValue)}`)
    case 'enum':
      return new ValidationError(field === '' ? '(root)' : field, `must be one of ${JSON.stringify(params.allowedValues)}`)
    default:
      return new ValidationError(field === '' ? '(root)' : field, err.message ?? 'invalid')
  }
}

/** Validate `data` or throw the first error naming its JSON path. */
export function check<T> (validate: ValidateFunction<T>, data: unknown, prefix = ''): T {
  if (validate(data)) return data
  const first = validate.errors?.[0]
  if (first == null) throw new ValidationError(prefix === '' ? '(root)' : prefix, 'invalid')
  throw schemaError(first, prefix)
}
