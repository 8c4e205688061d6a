import { announcementTargets } from '../../protocol/announcement.js'
import { firstDivergence } from '../../protocol/divergence.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { computeVerdicts, type TargetVerdict, type VerifiedClaim } from '../../protocol/quorum.js'
import { targetKey } from '../../protocol/target.js'
import type { Claim, Target } from '../../protocol/types.js'
import type { StoredMessage } from '../store/types.js'
import { worstStatus } from './outcome.js'
import type { AnnouncementSummary, ClaimSummary, TagConsensus, TargetConsensus } from './types.js'

export function announcerTrusted (policy: TrustPolicy, keyId: string): boolean {
  return policy.announcerKeys.has(keyId)
}

function announcementSummary (policy: TrustPolicy, m: StoredMessage): AnnouncementSummary {
  const a = m.announcement!
  return { id: m.id, keyId: m.keyId, commit: a.commit, announcedAt: a.announcedAt, trusted: announcerTrusted(policy, m.keyId) }
}

function summary (policy: TrustPolicy, m: StoredMessage): ClaimSummary {
  const c = m.claim as Claim
  const builder = policy.builderById.get(m.keyId)
  const out: ClaimSummary = { claimId: m.id, keyId: m.keyId, trusted: builder !== undefined, finishedOn: c.finishedOn }
  if (builder !== undefined) out.operator = builder.operator
  if (c.result !== undefined) out.digest = c.result.manifestDigest
  if (c.failure !== undefined) {
    out.failure = { class: c.failure.class, message: c.failure.message }
    if (c.failure.step !== undefined) out.failure.step = c.failure.step
    if (c.failure.logExcerpt !== undefined) out.failure.logExcerpt = c.failure.logExcerpt
  }
  return out
}

/** The verdict's own view of each claim, enriched with the claim it names and, for dissent, the first differing layer. */
function targetConsensus (policy: TrustPolicy, v: TargetVerdict, claimsOfTarget: StoredMessage[], byId: ReadonlyMap<string, StoredMessage>): TargetConsensus {
  const pick = (claimId: string): ClaimSummary | undefined => {
    const m = byId.get(claimId)
    return m !== undefined ? summary(policy, m) : undefined
  }
  const agreeing = v.agreeing.map(x => pick(x.claimId)).filter(x => x !== undefined)
  // Dissenters are compared with the leading digest's image: the one most builders got.
  const reference = v.agreeing[0] !== undefined ? byId.get(v.agreeing[0].claimId)?.claim?.result : undefined
  const dissenting = v.dissenting.map(x => {
    const s = pick(x.claimId)
    const result = byId.get(x.claimId)?.claim?.result
    if (s !== undefined && reference !== undefined && result !== undefined) {
      const d = firstDivergence(reference, result)
      if (d !== undefined) s.divergence = d
    }
    return s
  }).filter(x => x !== undefined)
  const failed = v.failed.map(x => pick(x.claimId)).filter(x => x !== undefined)
  // Untrusted claims: one per key and outcome (the smallest id), as the verdict counts them.
  const untrustedByOutcome = new Map<string, StoredMessage>()
  for (const m of claimsOfTarget) {
    if (policy.builderById.has(m.keyId)) continue
    const k = `${m.keyId} ${m.claim?.result?.manifestDigest ?? ''} ${m.claim?.failure?.class ?? ''}`
    const prev = untrustedByOutcome.get(k)
    if (prev === undefined || m.id < prev.id) untrustedByOutcome.set(k, m)
  }
  const untrusted = [...untrustedByOutcome.values()].map(m => summary(policy, m))
    .sort((a, b) => a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0)
  let lastClaimAt: string | undefined
  for (const m of claimsOfTarget) if (lastClaimAt === undefined || Date.parse(m.receivedAt) > Date.parse(lastClaimAt)) lastClaimAt = m.receivedAt

  const out: TargetConsensus = {
    key: v.key,
    variant: v.target.variant,
    platform: v.target.platform,
    status: v.status,
    threshold: v.threshold,
    trustedCount: v.trustedCount,
    outstanding: v.outstanding,
    operators: v.operators,
    agreeing,
    dissenting,
    failed,
    untrusted,
    equivocating: v.equivocating.map(e => {
      const operator = policy.builderById.get(e.keyId)?.operator
      return operator !== undefined ? { keyId: e.keyId, operator, digests: e.digests } : { keyId: e.keyId, digests: e.digests }
    }),
    sameEngine: v.sameEngine.map(x => ({ keyId: x.keyId, ...(policy.builderById.get(x.keyId)?.operator !== undefined ? { operator: policy.builderById.get(x.keyId)?.operator } : {}), digest: x.digest, engineId: x.engineId, countedAs: x.countedAs })),
    published: v.published
  }
  if (v.consensusDigest !== undefined) out.consensusDigest = v.consensusDigest
  if (v.leadingDigest !== undefined) out.leadingDigest = v.leadingDigest
  if (lastClaimAt !== undefined) out.lastClaimAt = lastClaimAt
  return out
}

export interface ReleaseEvaluation {
  consensus: TagConsensus
  /** The protocol's verdicts for the announced targets, in announcement order (for VSAs). */
  verdicts: TargetVerdict[]
}

/**
 * Verdicts for the targets an announcement names, from every stored claim for its commit.
 * Pure over its inputs: the same announcement, claims and policy give the same answer.
 */
export function evaluateReleaseFull (policy: TrustPolicy, chosen: StoredMessage, others: StoredMessage[], claims: StoredMessage[], published?: ReadonlyMap<string, string>): ReleaseEvaluation {
  const a = chosen.announcement!
  const relevant = claims.filter(m => m.claim != null && m.claim.target.repository === a.repository && m.claim.target.commit === a.commit)
  const byId = new Map(relevant.map(m => [m.id, m]))
  const expectedTargets = announcementTargets(a)
  const input: { claims: VerifiedClaim[], policy: TrustPolicy, expectedTargets: Target[], published?: ReadonlyMap<string, string> } = {
    claims: relevant.map(m => ({ claim: m.claim!, keyId: m.keyId, id: m.id })),
    policy,
    expectedTargets
  }
  if (published !== undefined) input.published = published
  const byKey = new Map(computeVerdicts(input).map(v => [v.key, v]))
  const claimsByTarget = new Map<string, StoredMessage[]>()
  for (const m of relevant) {
    const k = targetKey(m.claim!.target)
    const list = claimsByTarget.get(k)
    if (list === undefined) claimsByTarget.set(k, [m])
    else list.push(m)
  }
  // Announced targets only, in the announcement's order; claims for other targets of the commit belong to other releases.
  const verdicts: TargetVerdict[] = []
  const seen = new Set<string>()
  for (const t of expectedTargets) {
    const k = targetKey(t)
    const v = byKey.get(k)
    if (v === undefined || seen.has(k)) continue
    seen.add(k)
    verdicts.push(v)
  }
  const targets = verdicts.map(v => targetConsensus(policy, v, claimsByTarget.get(v.key) ?? [], byId))
  return {
    verdicts,
    consensus: {
      repository: a.repository,
      tag: a.tag,
      commit: a.commit,
      recipe: a.recipe,
      announcement: announcementSummary(policy, chosen),
      otherAnnouncements: others.map(m => announcementSummary(policy, m)),
      status: worstStatus(targets.map(t => t.status)),
      targets
    }
  }
}

export function evaluateRelease (policy: TrustPolicy, chosen: StoredMessage, others: StoredMessage[], claims: StoredMessage[], published?: ReadonlyMap<string, string>): TagConsensus {
  return evaluateReleaseFull(policy, chosen, others, claims, published).consensus
}
