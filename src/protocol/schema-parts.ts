import { LIMITS } from './limits.js'
import { PLATFORM, TAG } from './patterns.js'

/**
 * JSON schema fragments shared by the message schemas. The patterns here and in patterns.ts
 * are the wire rules for each field (documented in docs/protocol.md); HEX64, DIGEST and
 * COMMIT are checked through the equivalent formats of ajv.ts.
 */
export const HEX64 = '^[0-9a-f]{64}$'
/** No whitespace and no `#` (the subject and target-key separator). */
const REPOSITORY = '^[^\\s#]+$'
const VARIANT = '^[A-Za-z0-9][A-Za-z0-9._/-]*$'
const RECIPE_NAME = '^[A-Za-z0-9][A-Za-z0-9._/-]*$'

export const str = (maxLength: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: 'string', minLength: 1, maxLength, ...extra })

export const repository = str(LIMITS.repositoryLength, { pattern: REPOSITORY })
export const tag = str(LIMITS.tagLength, { pattern: TAG })
export const commit = str(40, { format: 'hex-sha1' })
export const variant = str(LIMITS.variantLength, { pattern: VARIANT })
export const platform = str(LIMITS.platformLength, { pattern: PLATFORM })
export const digest = str(71, { format: 'sha256-digest' })
const hex64 = str(64, { format: 'hex-sha256' })
export const time = str(64, { format: 'date-time' })
export const shortString = str(LIMITS.shortStringLength)

/** `{ gitCommit: <40 hex> }`: a subject or dependency digest naming a source commit. */
export const gitCommitDigest = { type: 'object', properties: { gitCommit: commit }, required: ['gitCommit'], additionalProperties: false }
/** `{ sha256: <64 hex> }`: a subject digest naming an artifact. */
export const sha256Digest = { type: 'object', properties: { sha256: hex64 }, required: ['sha256'], additionalProperties: false }

/** An in-toto `subject` (or dependency list) of exactly one entry: `[{ <nameKey>: name, digest }]`. */
export const single = (name: Record<string, unknown>, digestSchema: Record<string, unknown>, nameKey = 'name'): Record<string, unknown> => ({
  type: 'array',
  minItems: 1,
  maxItems: 1,
  items: {
    type: 'object',
    properties: { [nameKey]: name, digest: digestSchema },
    required: [nameKey, 'digest'],
    additionalProperties: false
  }
})

export const recipe = {
  type: 'object',
  properties: { name: str(LIMITS.recipeNameLength, { pattern: RECIPE_NAME }), digest },
  required: ['name', 'digest'],
  additionalProperties: false
}

/** SOURCE_DATE_EPOCH: seconds since 1970, up to year 9999. */
export const sourceDateEpoch = { type: 'integer', minimum: 0, maximum: 253402300799 }

export const environment = {
  type: 'object',
  properties: {
    engine: {
      type: 'object',
      properties: { name: { type: 'string', const: 'docker' }, version: shortString, apiVersion: shortString, id: shortString },
      required: ['name', 'version'],
      additionalProperties: false
    },
    buildx: shortString,
    buildkit: shortString,
    buildkitWorker: shortString,
    kernel: shortString,
    arch: str(32, { pattern: '^[a-z0-9_]+$' }),
    emulated: { type: 'boolean' },
    tool: {
      type: 'object',
      properties: { name: shortString, version: shortString },
      required: ['name', 'version'],
      additionalProperties: false
    }
  },
  required: ['engine', 'buildx', 'buildkit', 'kernel', 'arch', 'emulated', 'tool'],
  additionalProperties: false
}

export const failure = {
  type: 'object',
  properties: {
    class: { type: 'string', enum: ['source-error', 'build-failed', 'timeout', 'infrastructure-error'] },
    message: str(LIMITS.failureMessageLength),
    step: str(LIMITS.stepLength),
    logExcerpt: { type: 'string', maxLength: LIMITS.logExcerptLength }
  },
  required: ['class', 'message'],
  additionalProperties: false
}

/**
 * A Statement of one message kind, once `statement` has checked `_type` and routed on
 * `predicateType`: its single subject and its predicate, nothing else.
 */
export const statementWith = (subject: Record<string, unknown>, predicate: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  properties: { _type: { type: 'string' }, predicateType: { type: 'string' }, subject, predicate },
  required: ['_type', 'subject', 'predicateType', 'predicate'],
  additionalProperties: false
})

/** The in-toto Statement v1 envelope around any predicate (the predicate checked separately). */
export const statement = {
  type: 'object',
  properties: {
    _type: { type: 'string', const: 'https://in-toto.io/Statement/v1' },
    subject: { type: 'array', minItems: 1, maxItems: 1, items: { type: 'object' } },
    predicateType: str(256),
    predicate: { type: 'object' }
  },
  required: ['_type', 'subject', 'predicateType', 'predicate'],
  additionalProperties: false
}
