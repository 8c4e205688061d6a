import { isUtf8 } from 'node:buffer'
import { ajv, check } from './ajv.js'
import { announcementToStatement, checkAnnouncement, statementToAnnouncement } from './announcement.js'
import { checkClaim, claimToStatement, statementToClaim } from './claim.js'
import { checkedEnvelopeId, envelopeIdOf, signEnvelope, verifyEnvelopeInPlace, verifyEnvelopesInPlace, type Envelope, type VerifiedScratch, type VerifyOptions } from './dsse.js'
import { LimitError, ValidationError } from './errors.js'
import { parseStrictJson } from './json.js'
import { LIMITS } from './limits.js'
import type { SigningIdentity } from './keys.js'
import * as S from './schema-parts.js'
import type { Statement } from './statement.js'
import { ANNOUNCEMENT_PREDICATE, FAILURE_PREDICATE, PAYLOAD_TYPE, SLSA_PROVENANCE_V1, type Announcement, type Claim } from './types.js'

export { announcementSubjectName, announcementTargets, announcementToStatement, statementToAnnouncement, checkAnnouncement } from './announcement.js'
export { BUILDER_ID, BYPRODUCT, claimToStatement, statementToClaim, checkClaim, flattenEnvironment } from './claim.js'
export { targetKey, parseTargetKey, targetSubjectName } from './target.js'
export type { Statement, ResourceDescriptor } from './statement.js'

/**
 * Carried by every decoded message, in its type only: `decodeMessage` and `decodeMessages`
 * are the only code that can make one, so a value of the type has had its signature checked.
 */
declare const verified: unique symbol

interface DecodedBase {
  readonly [verified]: true
  keyId: string
  envelope: Envelope
  /** `envelopeId` of the envelope: computed on first read (only stores and feeds need it). */
  readonly id: string
}

export type DecodedMessage =
  | DecodedBase & { kind: 'announcement', announcement: Announcement }
  | DecodedBase & { kind: 'claim', claim: Claim }

export type DecodeOptions = Pick<VerifyOptions, 'keys' | 'allowEmbeddedKeys'>

const encoder = new TextEncoder()

/** The exact payload bytes of a Statement: compact JSON, UTF-8. */
function encodeStatement (statement: Statement): Uint8Array {
  return encoder.encode(JSON.stringify(statement))
}

/** Sign a Statement (for example a VSA) as a DSSE envelope of type `application/vnd.in-toto+json`. */
export function signStatement (statement: Statement, identity: SigningIdentity): Envelope {
  const payload = encodeStatement(statement)
  if (payload.byteLength > LIMITS.payloadBytes) throw new LimitError('envelope.payload', LIMITS.payloadBytes, payload.byteLength)
  return signEnvelope(PAYLOAD_TYPE, payload, identity)
}

export function signAnnouncement (a: Announcement, identity: SigningIdentity): Envelope {
  checkAnnouncement(a)
  return signStatement(announcementToStatement(a), identity)
}

/** Sign a claim: a SLSA provenance Statement when `c.result` is set, a failure Statement when `c.failure` is. */
export function signClaim (c: Claim, identity: SigningIdentity): Envelope {
  checkClaim(c)
  return signStatement(claimToStatement(c), identity)
}

const validateStatement = ajv.compile<{ predicateType: string }>(S.statement)

/** A verified envelope and its payload text, not yet parsed. */
interface Verified {
  text: string
  keyId: string
  envelope: Envelope
  payloadType: string
  /** The decoded signature that verified: the id covers it alone. */
  signature: Buffer
}

/** The payload of a verified envelope as text, with its type and UTF-8 checked; nothing parsed. */
function verifiedText (v: VerifiedScratch): Verified {
  if (v.payloadType !== PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${PAYLOAD_TYPE}`)
  // Reads the shared scratch buffer: done before anything else can verify.
  const bytes = v.pae.subarray(v.payloadOffset)
  if (!isUtf8(bytes)) throw new ValidationError('envelope.payload', 'not UTF-8 JSON (invalid UTF-8)')
  return { text: bytes.toString('utf8'), keyId: v.keyId, envelope: v.envelope, payloadType: v.payloadType, signature: v.signatureBytes[v.signatureIndex] as Buffer }
}

/** Parse and validate the Statement of a verified envelope; `knownId` when already computed. */
function decodeVerified (v: Verified, knownId?: string): DecodedMessage {
  return decodeStatement(v, knownId) as DecodedMessage
}

function decodeStatement (v: Verified, knownId?: string): Omit<DecodedBase, typeof verified> & ({ kind: 'announcement', announcement: Announcement } | { kind: 'claim', claim: Claim }) {
  const json = parseStrictJson(v.text, 'envelope.payload')
  const statement = check(validateStatement, json)
  // What the id needs, taken now: the caller owns the envelope object and may change it.
  const { payloadType, signature } = v
  const payload = v.envelope.payload
  let id: string | undefined = knownId
  const base = {
    keyId: v.keyId,
    envelope: v.envelope,
    get id (): string {
      id ??= checkedEnvelopeId(payloadType, payload, signature)
      return id
    }
  }
  switch (statement.predicateType) {
    case ANNOUNCEMENT_PREDICATE:
      return Object.assign(base, { kind: 'announcement' as const, announcement: statementToAnnouncement(statement) })
    case SLSA_PROVENANCE_V1:
    case FAILURE_PREDICATE:
      return Object.assign(base, { kind: 'claim' as const, claim: statementToClaim(statement) })
    default:
      throw new ValidationError('predicateType', `unknown predicate type ${JSON.stringify(statement.predicateType)}`)
  }
}

/**
 * Verify an envelope, then parse and strictly validate its Statement. Nothing in the
 * payload is read before a signature verifies. Throws SignatureError, ValidationError or
 * LimitError naming the field (`envelope.…` for the envelope, the Statement's JSON path otherwise).
 */
export function decodeMessage (env: unknown, opts: DecodeOptions = {}): DecodedMessage {
  return decodeVerified(verifiedText(verifyEnvelopeInPlace(env, opts)))
}

export type DecodeResult = { ok: true, message: DecodedMessage } | { ok: false, error: Error }

export interface DecodeManyOptions extends DecodeOptions {
  /**
   * Compute each message's id while its PAE bytes are still at hand, rather than decoding
   * the payload again on first read: for callers that read every id (stores, `verify`).
   */
  ids?: boolean
}

/** Messages one `decodeMessages` call takes; callers with more split them. */
export const MAX_DECODE_BATCH = 1024

/**
 * `decodeMessage` for many messages, with the same checks and the same errors, one result
 * per input in order. Every signature is checked first (see `verifyEnvelopesInPlace`), then
 * every verified payload is parsed: each phase keeps its own code and tables in the CPU
 * caches, which makes a batch of claims cheaper than the same claims one by one (see
 * benchmarks/verify.ts).
 */
export function decodeMessages (inputs: readonly unknown[], opts: DecodeManyOptions = {}): DecodeResult[] {
  if (inputs.length > MAX_DECODE_BATCH) throw new LimitError('messages', MAX_DECODE_BATCH, inputs.length)
  const out = new Array<DecodeResult>(inputs.length)
  verifyEnvelopesInPlace(inputs, opts, part => {
    for (const { index, result } of part) {
      try {
        if (result instanceof Error) throw result
        const v = verifiedText(result)
        out[index] = { ok: true, message: decodeVerified(v, opts.ids === true ? envelopeIdOf(v.payloadType, result.pae, v.signature, result.pae) : undefined) }
      } catch (err) {
        out[index] = { ok: false, error: err as Error }
      }
    }
  })
  return out
}
