import { verifyEnvelope } from '../../protocol/dsse.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { signStatement } from '../../protocol/messages.js'
import type { Statement } from '../../protocol/statement.js'
import { targetKey } from '../../protocol/target.js'
import { FAILURE_PREDICATE, SLSA_PROVENANCE_V1, SLSA_VSA_V1 } from '../../protocol/types.js'
import { buildIndexVsa, buildVsa } from '../../protocol/vsa.js'
import type { ReleaseEvaluation } from '../consensus/evaluate.js'
import type { Logger } from '../logger.js'
import { parseReference } from '../registry/reference.js'
import { PlatformNotFoundError } from '../registry/errors.js'
import type { PublishedImage, RegistryClient } from '../registry/types.js'
import type { RegistryWriter } from '../registry/writer.js'
import type { StoredClaim } from '../store/types.js'
import { ANNOTATION, type Attestation } from './artifacts.js'
import { collectAttestations, type FoundEnvelope } from './collect.js'
import { NoImageError, TagMovedError } from './errors.js'
import { createAttestationPublisher, type AttachResult } from './publish.js'

/** Claims attached per target at most; the counted ones first. */
export const MAX_CLAIMS_PER_TARGET = 256

export interface AttestComponents {
  registry: RegistryClient
  writer: RegistryWriter
  log: Logger
}

export interface AttestReleaseInput {
  evaluation: ReleaseEvaluation
  /** The stored claims of the release's commit (their envelopes are attached byte for byte). */
  claims: StoredClaim[]
  /** Published image repository per variant (`ghcr.io/m1k1o/neko/base`). */
  images: ReadonlyMap<string, string>
  tag: string
  identity: SigningIdentity
  /** `verifier.id` of the VSAs. */
  verifierId: string
  policyUri: string
  /** Hex SHA-256 of the trust policy file. */
  policyDigest: string
  /** Called as each target is done (or refused), so a caller can report progress. */
  onTarget?: (t: TargetAttestation) => void
}

export interface TargetAttestation {
  key: string
  variant: string
  platform: string
  /** `registry/repository@digest` of the per-platform manifest attested. */
  image?: string
  result?: 'PASSED' | 'FAILED'
  /** `pushed`, or `unchanged` when the same summary by the same key was already there. */
  vsa?: 'pushed' | 'unchanged'
  claims?: { attached: number, pushed: number }
  attach?: AttachResult
  /** Why nothing was attached for this target. */
  error?: string
}

/** A Statement without `predicate.timeVerified`: two VSAs saying the same thing compare equal. */
function sansTime (s: Statement): string {
  const { timeVerified: _t, ...predicate } = s.predicate
  return JSON.stringify({ ...s, predicate })
}

/** Whether `bytes` is a VSA signed by `identity` that says what `statement` says. */
function sameSummary (bytes: Uint8Array, statement: Statement, identity: SigningIdentity): boolean {
  try {
    const v = verifyEnvelope(Buffer.from(bytes).toString('utf8'), { keys: new Map([[identity.keyId, identity.publicKey]]) })
    return sansTime(JSON.parse(Buffer.from(v.payload).toString('utf8')) as Statement) === sansTime(statement)
  } catch {
    return false
  }
}

/** A VSA already attached by the same key about the same target that says what `statement` says. */
function previousSummary (found: FoundEnvelope[], statement: Statement, identity: SigningIdentity, target: string): FoundEnvelope | undefined {
  return found.find(e => e.annotations[ANNOTATION.kind] === 'vsa' && e.annotations[ANNOTATION.signer] === identity.keyId &&
    e.annotations[ANNOTATION.target] === target && sameSummary(e.bytes, statement, identity))
}

/** Image manifests an index lists (attestation manifests, `unknown/unknown`, left out). */
function indexImages (json: Record<string, unknown>): string[] {
  const manifests = Array.isArray(json.manifests) ? json.manifests as Array<{ digest?: unknown, platform?: { os?: unknown, architecture?: unknown } }> : []
  return manifests.filter(m => typeof m.digest === 'string' && typeof m.platform?.os === 'string' && m.platform.os !== 'unknown')
    .map(m => m.digest as string)
}

/**
 * Attaches, for every target of a release, the signed VSA of its verdict and the builders'
 * claims to the per-platform manifest the registry serves for the release tag. The tag is
 * read once per repository before anything is pushed and again before each target's push:
 * a tag that moved stops the run (TagMovedError). Registry errors stop it too; what was
 * attached before stays, and a re-run adds only what is missing.
 */
export async function attestRelease (components: AttestComponents, input: AttestReleaseInput): Promise<TargetAttestation[]> {
  const { registry, writer, log } = components
  const publisher = createAttestationPublisher({ writer, log })
  const tops = new Map<string, string>()
  const out: TargetAttestation[] = []
  const report = (t: TargetAttestation): void => {
    out.push(t)
    input.onTarget?.(t)
  }
  for (const v of input.evaluation.verdicts) {
    const repo = input.images.get(v.target.variant)
    if (repo !== undefined && !tops.has(repo)) tops.set(repo, await registry.manifestDigest(`${repo}:${input.tag}`))
  }

  const timeVerified = new Date().toISOString()
  /** Per repository: the index the tag names (when it names one) and the summaries of its platforms. */
  const perRepo = new Map<string, { indexDigest?: string, statements: Statement[] }>()
  for (const v of input.evaluation.verdicts) {
    const base = { key: v.key, variant: v.target.variant, platform: v.target.platform }
    const repo = input.images.get(v.target.variant)
    if (repo === undefined) {
      report({ ...base, error: new NoImageError(v.target.variant).message })
      continue
    }
    const top = tops.get(repo) as string
    const tagRef = `${repo}:${input.tag}`
    const ref = parseReference(tagRef)
    // By digest from here on: what is attested is what the tag named when it was read.
    let published: PublishedImage
    try {
      published = await registry.resolve(`${repo}@${top}`, v.target.platform)
    } catch (err) {
      // This target has no image to attach to; the others may.
      if (!(err instanceof PlatformNotFoundError)) throw err
      report({ ...base, error: err.message })
      continue
    }
    const manifest = await writer.getManifest(ref, published.manifestDigest)
    if (manifest === undefined) {
      report({ ...base, error: `${repo}@${published.manifestDigest} vanished from the registry` })
      continue
    }
    const subject = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.byteLength }
    const imageName = `${ref.registry}/${ref.repository}`

    const counted = new Set([...v.agreeing, ...v.dissenting, ...v.failed].map(x => x.claimId))
    const statement = buildVsa(v, {
      verifier: input.verifierId,
      policyUri: input.policyUri,
      policyDigest: input.policyDigest,
      claimIds: [...counted],
      timeVerified,
      image: { name: imageName, digest: subject.digest }
    })
    const result = (statement.predicate as { verificationResult: 'PASSED' | 'FAILED' }).verificationResult

    const existing = await collectAttestations({ writer, log }, ref, subject.digest)
    const previous = previousSummary(existing.envelopes, statement, input.identity, v.key)
    const group = perRepo.get(repo) ?? { statements: [] }
    if (published.indexDigest !== undefined) group.indexDigest = published.indexDigest
    group.statements.push(statement)
    perRepo.set(repo, group)
    const vsaBytes = previous?.bytes ?? new TextEncoder().encode(JSON.stringify(signStatement(statement, input.identity)))

    const ofTarget = input.claims.filter(m => targetKey(m.claim.target) === v.key)
      .sort((a, b) => Number(counted.has(b.id)) - Number(counted.has(a.id)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, MAX_CLAIMS_PER_TARGET)
    const attestations: Attestation[] = [
      { kind: 'vsa', envelope: vsaBytes, predicateType: SLSA_VSA_V1, signer: input.identity.keyId, target: v.key },
      ...ofTarget.map((m): Attestation => ({
        kind: 'claim',
        envelope: new TextEncoder().encode(m.envelopeJson),
        predicateType: m.claim.result !== undefined ? SLSA_PROVENANCE_V1 : FAILURE_PREDICATE,
        signer: m.keyId,
        target: v.key
      }))
    ]

    const now = await registry.manifestDigest(tagRef)
    if (now !== top) throw new TagMovedError(tagRef, top, now)
    const attach = await publisher.attach(ref, subject, attestations)
    report({
      ...base,
      image: `${imageName}@${subject.digest}`,
      result,
      vsa: previous !== undefined ? 'unchanged' : 'pushed',
      claims: { attached: ofTarget.length, pushed: attach.pushed.length - (previous === undefined ? 1 : 0) },
      attach
    })
  }

  // An admission controller checks the digest a Pod names: for a multi-platform tag, the
  // index. Its summary passes only when every image it lists passed above.
  const release = input.evaluation.consensus
  for (const [repo, group] of perRepo) {
    if (group.indexDigest === undefined) continue
    const tagRef = `${repo}:${input.tag}`
    const ref = parseReference(tagRef)
    const index = await writer.getManifest(ref, group.indexDigest)
    if (index === undefined) continue
    const imageName = `${ref.registry}/${ref.repository}`
    const target = `${release.repository}@${release.commit}#index`
    const statement = buildIndexVsa(group.statements, {
      verifier: input.verifierId,
      timeVerified,
      policyUri: input.policyUri,
      policyDigest: input.policyDigest,
      index: { name: imageName, digest: index.digest, manifests: indexImages(index.json) }
    })
    const existing = await collectAttestations({ writer, log }, ref, index.digest)
    const previous = previousSummary(existing.envelopes, statement, input.identity, target)
    const vsaBytes = previous?.bytes ?? new TextEncoder().encode(JSON.stringify(signStatement(statement, input.identity)))
    const now = await registry.manifestDigest(tagRef)
    if (now !== index.digest) throw new TagMovedError(tagRef, index.digest, now)
    const attach = await publisher.attach(ref, { mediaType: index.mediaType, digest: index.digest, size: index.bytes.byteLength },
      [{ kind: 'vsa', envelope: vsaBytes, predicateType: SLSA_VSA_V1, signer: input.identity.keyId, target }])
    report({
      key: target,
      variant: 'index',
      platform: 'all',
      image: `${imageName}@${index.digest}`,
      result: (statement.predicate as { verificationResult: 'PASSED' | 'FAILED' }).verificationResult,
      vsa: previous !== undefined ? 'unchanged' : 'pushed',
      claims: { attached: 0, pushed: 0 },
      attach
    })
  }
  return out
}
