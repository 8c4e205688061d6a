/**
 * neko-rebuilder's protocol as a library (`neko-rebuilder/protocol`): what another program
 * needs to sign, verify and judge claims. Pure, like the rest of src/protocol: no I/O.
 * Only what is listed here is public; the modules' performance internals (scratch buffers,
 * in-place verification) are not. Documented in docs/protocol-api.md.
 */

// Keys and identities
export { exportPrivatePem, generateIdentity, identityFromPrivatePem, keyIdOf, publicKeyFromPem, type Identity, type SigningIdentity } from './keys.js'

// Signing
export { signAnnouncement, signClaim, signStatement } from './messages.js'

// Verifying and decoding: one envelope, many, or a JSON Lines bundle
export { decodeMessage, decodeMessages, MAX_DECODE_BATCH, type DecodedMessage, type DecodeOptions, type DecodeResult } from './messages.js'
export { parseBundle, serializeBundle, type BundleOptions, type ParsedBundle } from './bundle.js'
export { envelopeId, verifyEnvelope, type Envelope, type VerifiedEnvelope, type VerifyOptions } from './dsse.js'

// Trust policy
export { parsePolicy, policyKeys, type PolicyAnnouncer, type PolicyBuilder, type TrustPolicy } from './policy.js'

// Verdicts
export { announcementTargets } from './announcement.js'
export { computeVerdicts, type BuilderVote, type TargetVerdict, type VerdictInput, type VerifiedClaim } from './quorum.js'
export { parseTargetKey, targetKey } from './target.js'
export { buildVsa, REPRODUCIBLE_LEVEL, type VsaOptions } from './vsa.js'

// Why builders disagree: divergence reports
export { DIVERGENCE_PREDICATE, verifyDivergenceReport, type ClaimRef, type DivergenceCause, type DivergenceReport } from './divergence-report.js'

// The data model, its limits and its field rules
export type { Announcement, BuildEnvironment, Claim, ClaimBase, Digest, Failure, FailureClaim, FailureClass, ImageResult, PublishedMatch, RecipeRef, SuccessClaim, Target, VerdictStatus } from './types.js'
export type { Statement } from './statement.js'
export { LIMITS } from './limits.js'
export { WIRE } from './patterns.js'

// Errors: every one a NekoError with a stable `name` and `code`
export { LimitError, NekoError, PolicyError, SignatureError, ValidationError } from './errors.js'
