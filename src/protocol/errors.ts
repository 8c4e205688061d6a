/**
 * Errors shared by every part of neko-rebuilder. Each class has a stable `name`
 * (and `code`) so callers and the CLI can branch on it without string matching.
 */
export class NekoError extends Error {
  override name: string = 'NekoError'
  readonly code: string = 'ERR_NEKO'
}

/** A value from outside (file, network, flag) is malformed; `field` is a JSON path such as `predicate.runDetails.metadata.startedOn`. */
export class ValidationError extends NekoError {
  override name = 'ValidationError'
  override readonly code = 'ERR_VALIDATION'
  /** The message without the field, for callers that report the field their own way. */
  readonly reason: string
  constructor (readonly field: string, message: string) {
    super(`${field}: ${message}`)
    this.reason = message
  }
}

/** A size or count from outside exceeds its limit; the message names the field and the limit. */
export class LimitError extends NekoError {
  override name = 'LimitError'
  override readonly code = 'ERR_LIMIT'
  constructor (readonly field: string, readonly limit: number, readonly actual: number) {
    super(`${field}: ${actual} exceeds the limit of ${limit}`)
  }
}

/** A DSSE signature does not verify, or no trusted key matches. */
export class SignatureError extends NekoError {
  override name = 'SignatureError'
  override readonly code = 'ERR_SIGNATURE'
}

/** A trust policy file is malformed. */
export class PolicyError extends NekoError {
  override name = 'PolicyError'
  override readonly code = 'ERR_POLICY'
  constructor (readonly field: string, message: string) {
    super(`policy ${field}: ${message}`)
  }
}
