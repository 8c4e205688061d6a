import { isUtf8 } from 'node:buffer'
import { ajv, check } from './ajv.js'
import { announcementToStatement, checkAnnouncement, statementToAnnouncement } from './announcement.js'
import { checkClaim, claimToStatement, statementToClaim } from './claim.js'
import { signEnvelope, verifyEnvelopeInPlace, type Envelope, type VerifyOptions } from './dsse.js'
import { LimitError, ValidationError } from './errors.js'
import { LIMITS } from './limits.js'
import type { SigningIdentity } from './keys.js'
import * as S from './schema-parts.js'
import type { Statement } from './statement.js'
import { ANNOUNCEMENT_PREDICATE, FAILURE_PREDICATE, PAYLOAD_TYPE, SLSA_PROVENANCE_V1, type Announcement, type Claim } from './types.js'

export { announcementSubjectName, announcementToStatement, statementToAnnouncement, checkAnnouncement } from './announcement.js'
export { BUILDER_ID, BYPRODUCT, claimToStatement, statementToClaim, checkClaim, flattenEnvironment } from './claim.js'
export { targetKey, parseTargetKey, targetSubjectName } from './target.js'
export type { Statement, ResourceDescriptor } from './statement.js'

export type DecodedMessage =
  | { kind: 'announcement', announcement: Announcement, keyId: string, envelope: Envelope, id: string }
  | { kind: 'claim', claim: Claim, keyId: string, envelope: Envelope, id: string }

export type DecodeOptions = Pick<VerifyOptions, 'keys' | 'allowEmbeddedKeys'>

const encoder = new TextEncoder()

/** The exact payload bytes of a Statement: compact JSON, UTF-8. */
export function encodeStatement (statement: Statement): Uint8Array {
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

/**
 * Verify an envelope, then parse and strictly validate its Statement. Nothing in the
 * payload is read before a signature verifies. Throws SignatureError, ValidationError or
 * LimitError naming the field (`envelope.…` for the envelope, the Statement's JSON path otherwise).
 */
export function decodeMessage (env: unknown, opts: DecodeOptions = {}): DecodedMessage {
  const v = verifyEnvelopeInPlace(env, opts)
  if (v.payloadType !== PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${PAYLOAD_TYPE}`)
  // Reads the shared scratch buffer: done before anything else can verify.
  let json: unknown
  try {
    if (!isUtf8(v.pae.subarray(v.payloadOffset))) throw new Error('invalid UTF-8')
    json = JSON.parse(v.pae.toString('utf8', v.payloadOffset))
  } catch (err) {
    throw new ValidationError('envelope.payload', `not UTF-8 JSON (${(err as Error).message})`)
  }
  const statement = check(validateStatement, json)
  switch (statement.predicateType) {
    case ANNOUNCEMENT_PREDICATE:
      return { kind: 'announcement', announcement: statementToAnnouncement(statement), keyId: v.keyId, envelope: v.envelope, id: v.id }
    case SLSA_PROVENANCE_V1:
    case FAILURE_PREDICATE:
      return { kind: 'claim', claim: statementToClaim(statement), keyId: v.keyId, envelope: v.envelope, id: v.id }
    default:
      throw new ValidationError('predicateType', `unknown predicate type ${JSON.stringify(statement.predicateType)}`)
  }
}
