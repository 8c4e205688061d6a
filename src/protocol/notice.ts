import { ajv, check } from './ajv.js'
import { LimitError, NekoError, ValidationError } from './errors.js'
import { envelopeIdOf, signEnvelope, verifyEnvelopeParts, type Envelope } from './dsse.js'
import type { SigningIdentity } from './keys.js'
import { parseStrictJson } from './json.js'
import * as S from './schema-parts.js'
import type { Target } from './types.js'

/**
 * DSSE payload type of a work notice. Not an in-toto statement: a notice attests nothing about
 * an artifact, it says who is building what for the next few minutes, so it has a type of its own
 * and can never be taken for a claim.
 */
export const NOTICE_PAYLOAD_TYPE = 'application/vnd.neko-rebuilder.notice+json;version=1'

export const NOTICE_LIMITS = {
  /** One notice envelope as JSON text: a target, two ids and three numbers. */
  envelopeBytes: 4 * 1024,
  /**
   * Longest life of one notice. A builder renews its notice while it builds, so a short life is
   * what lets a taker that died be replaced soon; a long one would let one notice hold a target.
   */
  maxTtlMs: 15 * 60_000,
  /** How far in the future `issuedAt` may be (clock skew between volunteers). */
  maxSkewMs: 2 * 60_000,
  /** Longest expected duration a notice may state (an arm64 base under emulation takes hours). */
  maxExpectedMs: 24 * 3600_000
} as const

/** A builder's signed word that it is building (or, `withdrawn`, no longer building) one target. */
export interface Notice {
  /** The target being built. */
  target: Target
  /** Engine id the build runs on (`environment.engine.id` of the claim to come): one engine counts once. */
  engineId: string
  /** How long the build is expected to take from `startedAt`, in ms. */
  expectedMs: number
  /** When the build started (RFC 3339). */
  startedAt: string
  /** When this notice was signed (RFC 3339); a newer notice of the same key and target replaces an older one. */
  issuedAt: string
  /** After this instant (RFC 3339) the notice says nothing: the builder died, stalled or left. */
  expiresAt: string
  /** The builder stopped without a claim (it left, or was stopped): others need not wait for the expiry. */
  withdrawn?: boolean
}

export interface DecodedNotice {
  notice: Notice
  /** Key id of the verified signer. */
  keyId: string
  /** Envelope id (content hash). */
  id: string
  envelope: Envelope
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['target', 'engineId', 'expectedMs', 'startedAt', 'issuedAt', 'expiresAt'],
  properties: {
    target: {
      type: 'object',
      additionalProperties: false,
      required: ['repository', 'commit', 'variant', 'platform'],
      properties: { repository: S.repository, tag: S.tag, commit: S.commit, variant: S.variant, platform: S.platform }
    },
    engineId: S.shortString,
    expectedMs: { type: 'integer', minimum: 0, maximum: NOTICE_LIMITS.maxExpectedMs },
    startedAt: S.time,
    issuedAt: S.time,
    expiresAt: S.time,
    withdrawn: { type: 'boolean' }
  }
} as const

const validate = ajv.compile<Notice>(schema)

/** Signs a notice with the builder's key; refuses one that a peer would refuse. */
export function signNotice (notice: Notice, identity: SigningIdentity): Envelope {
  check(validate, notice, 'notice')
  checkTimes(notice, Date.parse(notice.issuedAt))
  const env = signEnvelope(NOTICE_PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(notice)), identity)
  const bytes = Buffer.byteLength(JSON.stringify(env))
  if (bytes > NOTICE_LIMITS.envelopeBytes) throw new LimitError('notice', NOTICE_LIMITS.envelopeBytes, bytes)
  return env
}

function checkTimes (n: Notice, now: number): void {
  const issued = Date.parse(n.issuedAt)
  const expires = Date.parse(n.expiresAt)
  if (issued > now + NOTICE_LIMITS.maxSkewMs) throw new ValidationError('notice.issuedAt', 'is in the future')
  if (Date.parse(n.startedAt) > issued) throw new ValidationError('notice.startedAt', 'is after issuedAt')
  if (expires <= issued) throw new ValidationError('notice.expiresAt', 'is not after issuedAt')
  if (expires - issued > NOTICE_LIMITS.maxTtlMs) throw new ValidationError('notice.expiresAt', `is more than ${NOTICE_LIMITS.maxTtlMs / 60_000} minutes after issuedAt`)
}

/** Thrown for a notice whose expiry has passed: well formed, but it says nothing any more. */
export class NoticeExpiredError extends NekoError {
  override name = 'NoticeExpiredError'
  override readonly code: string = 'ERR_NOTICE_EXPIRED'
  constructor (readonly expiredMsAgo: number) {
    super(`notice.expiresAt: expired ${Math.round(expiredMsAgo / 1000)} s ago`)
  }
}

/**
 * Verifies and decodes a notice envelope (JSON text or bytes) at time `now`. Size is checked
 * before anything is parsed; the signer's key is the embedded one (whether the key counts is
 * the policy's business, not the decoder's). Throws `NoticeExpiredError` for an expired one.
 */
export function decodeNotice (input: string | Uint8Array, now: number = Date.now()): DecodedNotice {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
  if (bytes > NOTICE_LIMITS.envelopeBytes) throw new LimitError('notice', NOTICE_LIMITS.envelopeBytes, bytes)
  const parts = verifyEnvelopeParts(input, { allowEmbeddedKeys: true, maxBytes: NOTICE_LIMITS.envelopeBytes })
  if (parts.payloadType !== NOTICE_PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${NOTICE_PAYLOAD_TYPE}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(parts.payload)
  } catch {
    throw new ValidationError('notice', 'not UTF-8')
  }
  // One meaning for every reader of a signed payload: no member twice.
  const json = parseStrictJson(text, 'notice')
  const notice = check(validate, json, 'notice')
  checkTimes(notice, now)
  const expires = Date.parse(notice.expiresAt)
  if (expires <= now) throw new NoticeExpiredError(now - expires)
  return {
    notice,
    keyId: parts.keyId,
    envelope: parts.envelope,
    id: envelopeIdOf(parts.payloadType, parts.payload, parts.signatureBytes[parts.signatureIndex] as Uint8Array, parts.pae)
  }
}
