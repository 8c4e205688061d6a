import { isUtf8 } from 'node:buffer'
import { pathToFileURL } from 'node:url'
import { ajv, check } from './ajv.js'
import { verifyEnvelope, type VerifyOptions } from './dsse.js'
import { ValidationError } from './errors.js'
import type { TargetVerdict } from './quorum.js'
import type { Statement } from './statement.js'
import { targetSubjectName } from './target.js'
import { PAYLOAD_TYPE, SLSA_VSA_V1, STATEMENT_TYPE } from './types.js'

/** Level recorded in `verifiedLevels` when a quorum of trusted rebuilders agreed. */
export const REPRODUCIBLE_LEVEL = 'NEKO_REBUILDER_REPRODUCIBLE'

/** `verifiedLevels` of a FAILED summary, as VSA v1 says: "or FAILED if policy verification failed". */
export const FAILED_LEVEL = 'FAILED'

/**
 * The predicate's extension field with the quorum's counts. VSA v1 allows extension fields
 * "using field names that are URIs", so the name is one this project owns.
 */
export const QUORUM_FIELD = 'https://neko-rebuilder.github.io/vsa-quorum/v1'

export interface VsaQuorum {
  threshold: number
  agreeingBuilders: number
  agreeingOperators: number
  operators: string[]
}

/**
 * `resourceUri` of an image verified: its package URL (purl, type `oci`), which names the
 * repository and pins the manifest digest: `pkg:oci/base@sha256%3A…?repository_url=ghcr.io/m1k1o/neko/base`.
 */
export function imageResourceUri (name: string, digest: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1)
  return `pkg:oci/${encodeURIComponent(last.toLowerCase())}@${encodeURIComponent(digest)}?repository_url=${encodeURIComponent(name).replace(/%2F/g, '/')}`
}

/**
 * `git+<repository>` as a URI: a remote URL as it is, a local path as `git+file://` (an
 * absolute path is not a URI on its own).
 */
export function sourceUri (repository: string): string {
  if (repository.startsWith('/')) return `git+${pathToFileURL(repository).toString()}`
  return `git+${repository}`
}

/** `verifier.id` for a signer known by its key: `urn:neko-rebuilder:key:<key id>`. */
export function verifierIdOf (keyId: string): string {
  return `${VERIFIER_KEY_URN}${keyId}`
}
export const VERIFIER_KEY_URN = 'urn:neko-rebuilder:key:'

export interface VsaOptions {
  /** `verifier.id`: URI of the party that signs the VSA (`verifierIdOf(keyId)`, or a URI it controls). */
  verifier: string
  /** `policy.uri`: where the trust policy applied can be found. */
  policyUri?: string
  /** `policy.digest.sha256`: hex SHA-256 of the trust policy file's bytes. */
  policyDigest?: string
  /**
   * The published image the summary is about: it becomes the subject, and the result is
   * PASSED only when the agreed digest is this one.
   */
  image?: { name: string, digest: string }
  /** Envelope ids (`envelopeId`) of the claims the verdict rests on. */
  claimIds: string[]
  /** RFC 3339 */
  timeVerified: string
}

/**
 * A SLSA verification summary (VSA v1) for one target verdict. PASSED only when the target
 * is reproducible and does not contradict the published digest. The subject is the agreed
 * manifest (or, without one, the source commit); `resourceUri` the image verified (without
 * one, the source target). Input attestations are named by envelope id: every claim judged,
 * same-engine votes included, since VSA v1 wants "all the attestations used".
 * Sign it with `signStatement` (messages.ts).
 */
export function buildVsa (verdict: TargetVerdict, opts: VsaOptions): Statement {
  const t = verdict.target
  const image = opts.image
  const passed = verdict.status === 'reproducible' && verdict.published.match !== 'no' &&
    (image === undefined || verdict.consensusDigest === image.digest)
  const subjectDigest: Record<string, string> = image !== undefined
    ? { sha256: image.digest.slice('sha256:'.length) }
    : verdict.consensusDigest !== undefined
      ? { sha256: verdict.consensusDigest.slice('sha256:'.length) }
      : { gitCommit: t.commit }
  // Each input says how it was counted, so a policy can count operators without the claims.
  const roles = new Map<string, Record<string, string>>()
  for (const v of verdict.agreeing) roles.set(v.claimId, { vote: 'agree', builder: v.name, operator: v.operator, manifestDigest: v.digest })
  for (const v of verdict.dissenting) roles.set(v.claimId, { vote: 'dissent', builder: v.name, operator: v.operator, manifestDigest: v.digest })
  for (const f of verdict.failed) roles.set(f.claimId, { vote: 'failed', builder: f.name ?? f.keyId, failure: f.failure.class })
  for (const v of verdict.sameEngine) roles.set(v.claimId, { vote: 'same-engine', builder: v.name, manifestDigest: v.digest, engineId: v.engineId, countedAs: v.countedAs })
  const quorum: VsaQuorum = {
    threshold: verdict.threshold,
    agreeingBuilders: verdict.agreeing.length,
    agreeingOperators: verdict.operators.length,
    operators: verdict.operators
  }
  const policy: Record<string, unknown> = { uri: opts.policyUri ?? 'urn:neko-rebuilder:policy:local' }
  if (opts.policyDigest !== undefined) policy.digest = { sha256: opts.policyDigest }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: image?.name ?? targetSubjectName(t), digest: subjectDigest }],
    predicateType: SLSA_VSA_V1,
    predicate: {
      verifier: { id: opts.verifier },
      timeVerified: opts.timeVerified,
      resourceUri: image !== undefined ? imageResourceUri(image.name, image.digest) : `${sourceUri(t.repository)}@${t.commit}#${t.variant}@${t.platform}`,
      policy,
      inputAttestations: [...new Set([...opts.claimIds, ...verdict.sameEngine.map(v => v.claimId)])].sort().map(id => {
        const role = roles.get(id)
        return { uri: `urn:neko-rebuilder:envelope:${id}`, digest: { sha256: id }, ...(role !== undefined ? { annotations: role } : {}) }
      }),
      verificationResult: passed ? 'PASSED' : 'FAILED',
      verifiedLevels: [passed ? REPRODUCIBLE_LEVEL : FAILED_LEVEL],
      // An extension field (in-toto readers ignore fields they do not know): the counts a
      // policy engine can compare without counting, since cosign's CUE cannot count the
      // inputs (its comprehensions do not see the attestation).
      [QUORUM_FIELD]: quorum
    }
  }
}

export interface IndexVsaOptions {
  verifier: string
  timeVerified: string
  policyUri: string
  policyDigest?: string
  /** The image index, and every image manifest it lists. */
  index: { name: string, digest: string, manifests: string[] }
}

/**
 * A VSA for an image index, from the VSAs of its per-platform manifests: PASSED only when
 * every image manifest the index lists has a PASSED summary among `platforms` (an index
 * with a platform nobody rebuilt does not pass). Its inputs are theirs; its quorum counts
 * are the smallest among them, and its operators those common to all.
 */
export function buildIndexVsa (platforms: Statement[], opts: IndexVsaOptions): Statement {
  const passedDigests = new Set<string>()
  const inputs = new Map<string, unknown>()
  let quorum: VsaQuorum | undefined
  for (const s of platforms) {
    const p = s.predicate as { verificationResult?: string, inputAttestations?: Array<{ uri: string }>, [QUORUM_FIELD]?: VsaQuorum }
    const q = p[QUORUM_FIELD]
    const digest = s.subject[0]?.digest?.sha256
    if (p.verificationResult === 'PASSED' && digest !== undefined) passedDigests.add(`sha256:${digest}`)
    for (const i of p.inputAttestations ?? []) inputs.set(i.uri, i)
    if (q !== undefined) {
      quorum = quorum === undefined
        ? { ...q, operators: [...q.operators] }
        : {
            threshold: Math.max(quorum.threshold, q.threshold),
            agreeingBuilders: Math.min(quorum.agreeingBuilders, q.agreeingBuilders),
            agreeingOperators: Math.min(quorum.agreeingOperators, q.agreeingOperators),
            operators: quorum.operators.filter(o => q.operators.includes(o))
          }
    }
  }
  const passed = opts.index.manifests.length > 0 && opts.index.manifests.every(d => passedDigests.has(d))
  const policy: Record<string, unknown> = { uri: opts.policyUri }
  if (opts.policyDigest !== undefined) policy.digest = { sha256: opts.policyDigest }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: opts.index.name, digest: { sha256: opts.index.digest.slice('sha256:'.length) } }],
    predicateType: SLSA_VSA_V1,
    predicate: {
      verifier: { id: opts.verifier },
      timeVerified: opts.timeVerified,
      resourceUri: imageResourceUri(opts.index.name, opts.index.digest),
      policy,
      inputAttestations: [...inputs.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, v]) => v),
      verificationResult: passed ? 'PASSED' : 'FAILED',
      verifiedLevels: [passed ? REPRODUCIBLE_LEVEL : FAILED_LEVEL],
      [QUORUM_FIELD]: quorum ?? { threshold: 0, agreeingBuilders: 0, agreeingOperators: 0, operators: [] }
    }
  }
}

/** What a reader needs of a signed VSA: who signed it, about what, and the result. */
export interface VsaSummary {
  /** Key id of the key whose signature verified. */
  keyId: string
  verifier: string
  subjects: Array<{ name?: string, sha256?: string }>
  result: 'PASSED' | 'FAILED'
  verifiedLevels: string[]
  timeVerified?: string
  policyDigest?: string
  /** Distinct operators among the inputs annotated `vote: agree`. */
  agreeingOperators: string[]
  inputs: number
}

interface VsaShape {
  _type: string
  subject: Array<{ name?: string, digest: Record<string, string> }>
  predicateType: string
  predicate: {
    verifier: { id: string }
    timeVerified?: string
    policy?: { digest?: { sha256?: string } }
    inputAttestations?: Array<{ annotations?: { vote?: string, operator?: string } }>
    verificationResult: 'PASSED' | 'FAILED'
    verifiedLevels?: string[]
  }
}

const text = (max: number): Record<string, unknown> => ({ type: 'string', maxLength: max })
const validateVsa = ajv.compile<VsaShape>({
  type: 'object',
  properties: {
    _type: { type: 'string', const: STATEMENT_TYPE },
    subject: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        properties: { name: text(1024), digest: { type: 'object', maxProperties: 8, additionalProperties: text(256) } },
        required: ['digest']
      }
    },
    predicateType: { type: 'string', const: SLSA_VSA_V1 },
    predicate: {
      type: 'object',
      properties: {
        verifier: { type: 'object', properties: { id: text(1024) }, required: ['id'] },
        timeVerified: text(64),
        policy: { type: 'object' },
        inputAttestations: { type: 'array', maxItems: 4096, items: { type: 'object' } },
        verificationResult: { type: 'string', enum: ['PASSED', 'FAILED'] },
        verifiedLevels: { type: 'array', maxItems: 64, items: text(256) }
      },
      required: ['verifier', 'verificationResult']
    }
  },
  required: ['_type', 'subject', 'predicateType', 'predicate']
})

/**
 * Verifies a VSA envelope (the keys of `opts`, or the key it embeds when `allowEmbeddedKeys`)
 * and reads what it says. The summary is for display: verdicts are recomputed from the
 * claims, never taken from a VSA.
 */
export function decodeVsa (envelope: unknown, opts: VerifyOptions = {}): VsaSummary {
  const v = verifyEnvelope(envelope, opts)
  if (v.payloadType !== PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${PAYLOAD_TYPE}`)
  if (!isUtf8(v.payload)) throw new ValidationError('envelope.payload', 'not UTF-8')
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(v.payload).toString('utf8'))
  } catch (err) {
    throw new ValidationError('envelope.payload', `not JSON (${(err as Error).message})`)
  }
  const s = check(validateVsa, json)
  const p = s.predicate
  const operators = new Set<string>()
  for (const a of p.inputAttestations ?? []) {
    if (a.annotations?.vote === 'agree' && typeof a.annotations.operator === 'string') operators.add(a.annotations.operator)
  }
  const out: VsaSummary = {
    keyId: v.keyId,
    verifier: p.verifier.id,
    subjects: s.subject.map(x => ({ ...(x.name !== undefined ? { name: x.name } : {}), ...(x.digest.sha256 !== undefined ? { sha256: x.digest.sha256 } : {}) })),
    result: p.verificationResult,
    verifiedLevels: p.verifiedLevels ?? [],
    agreeingOperators: [...operators].sort(),
    inputs: p.inputAttestations?.length ?? 0
  }
  if (p.timeVerified !== undefined) out.timeVerified = p.timeVerified
  if (typeof p.policy?.digest?.sha256 === 'string') out.policyDigest = p.policy.digest.sha256
  return out
}

/** Whether a parsed Statement-like value is a VSA (by predicate type only). */
export function isVsaPayload (json: unknown): boolean {
  return typeof json === 'object' && json !== null && (json as { predicateType?: unknown }).predicateType === SLSA_VSA_V1
}
