import { announcementTargets } from '../../protocol/announcement.js'
import { firstDivergence } from '../../protocol/divergence.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { groupByTarget, verdictsOfGroups, type TargetVerdict, type VerifiedClaim } from '../../protocol/quorum.js'
import { targetKey } from '../../protocol/target.js'
import type { Announcement, ImageResult, Target } from '../../protocol/types.js'
import type { StoredAnnouncement, StoredClaim } from '../store/types.js'
import { worstStatus } from './outcome.js'
import type { AnnouncementSummary, ClaimSummary, TagConsensus, TargetConsensus } from './types.js'

export function announcerTrusted (policy: TrustPolicy, keyId: string): boolean {
  return policy.announcerKeys.has(keyId)
}

/** A verified claim as a verdict reads it, and when it arrived (a bundle carries no receipt time: its `finishedOn` stands in). */
export interface JudgedClaim extends VerifiedClaim {
  receivedAt?: string
}

export interface JudgeInput {
  policy: TrustPolicy
  /** Announcements whose targets are judged, claimed or not; which of them to trust is the caller's decision. */
  announcements: readonly Announcement[]
  claims: readonly JudgedClaim[]
  /** `targetKey` → the digest the registry publishes; targets not in it are `unknown`. */
  published?: ReadonlyMap<string, string> | undefined
  /** Builder keys not counted, with the reason shown (a log proven to show two views). */
  setAside?: ReadonlyMap<string, string> | undefined
  /**
   * Also judge targets that only claims name (`verify`, `verify-image`), after the announced
   * ones, in target-key order. By default only the announced targets, in the announcements'
   * order: claims for other targets of a commit belong to other releases.
   */
  claimedTargets?: boolean
}

export interface Judgement {
  /** The protocol's verdicts (for VSAs and `--json`). */
  verdicts: TargetVerdict[]
  /** The same verdicts, in the same order, with each claim they name summarised. */
  targets: TargetConsensus[]
}

/** The claims of stored messages, as `judge` reads them. */
export function judgedClaims (messages: readonly StoredClaim[]): JudgedClaim[] {
  return messages.map(m => ({ claim: m.claim, keyId: m.keyId, id: m.id, receivedAt: m.receivedAt }))
}

function announcementSummary (policy: TrustPolicy, m: StoredAnnouncement): AnnouncementSummary {
  const a = m.announcement
  return { id: m.id, keyId: m.keyId, commit: a.commit, announcedAt: a.announcedAt, trusted: announcerTrusted(policy, m.keyId) }
}

function summary (policy: TrustPolicy, m: JudgedClaim): ClaimSummary {
  const c = m.claim
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

/** The whole image result, where the claim kept it (`verify` keeps only the digest). */
function imageOf (m: JudgedClaim | undefined): ImageResult | undefined {
  const r = m?.claim.result
  return r !== undefined && Array.isArray((r as Partial<ImageResult>).diffIds) ? r as ImageResult : undefined
}

function operatorOf (policy: TrustPolicy, keyId: string): { operator?: string } {
  const operator = policy.builderById.get(keyId)?.operator
  return operator !== undefined ? { operator } : {}
}

/** The verdict's own view of each claim, enriched with the claim it names and, for dissent, the first differing layer. */
function targetConsensus (policy: TrustPolicy, v: TargetVerdict, claimsOfTarget: readonly JudgedClaim[]): TargetConsensus {
  // One pass over the target's claims: those the verdict names by id, one untrusted claim per
  // key and outcome (the smallest id, as the verdict counts them), and the newest arrival.
  const named = new Set<string>()
  for (const x of v.agreeing) named.add(x.claimId)
  for (const x of v.dissenting) named.add(x.claimId)
  for (const x of v.failed) named.add(x.claimId)
  const byId = new Map<string, JudgedClaim>()
  const untrustedByOutcome = new Map<string, JudgedClaim>()
  let lastClaimAt: string | undefined
  let lastTime = NaN
  for (const m of claimsOfTarget) {
    if (named.has(m.id)) byId.set(m.id, m)
    if (!policy.builderById.has(m.keyId)) {
      const k = `${m.keyId} ${m.claim.result?.manifestDigest ?? ''} ${m.claim.failure?.class ?? ''}`
      const prev = untrustedByOutcome.get(k)
      if (prev === undefined || m.id < prev.id) untrustedByOutcome.set(k, m)
    }
    const at = m.receivedAt ?? m.claim.finishedOn
    if (at === lastClaimAt) continue // the same time: parsed once
    const time = Date.parse(at)
    if (lastClaimAt === undefined || time > lastTime) {
      lastClaimAt = at
      lastTime = time
    }
  }
  const pick = (claimId: string): ClaimSummary | undefined => {
    const m = byId.get(claimId)
    return m !== undefined ? summary(policy, m) : undefined
  }
  const agreeing = v.agreeing.map(x => pick(x.claimId)).filter(x => x !== undefined)
  // Dissenters are compared with the leading digest's image: the one most builders got.
  const reference = v.agreeing[0] !== undefined ? imageOf(byId.get(v.agreeing[0].claimId)) : undefined
  const dissenting = v.dissenting.map(x => {
    const s = pick(x.claimId)
    const result = imageOf(byId.get(x.claimId))
    if (s !== undefined && reference !== undefined && result !== undefined) {
      const d = firstDivergence(reference, result)
      if (d !== undefined) s.divergence = d
    }
    return s
  }).filter(x => x !== undefined)
  const failed = v.failed.map(x => pick(x.claimId)).filter(x => x !== undefined)
  const untrusted = [...untrustedByOutcome.values()].map(m => summary(policy, m))
    .sort((a, b) => a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0)

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
    equivocating: v.equivocating.map(e => ({ keyId: e.keyId, ...operatorOf(policy, e.keyId), digests: e.digests })),
    setAside: v.setAside.map(x => ({ keyId: x.keyId, ...operatorOf(policy, x.keyId), reason: x.reason })),
    sameEngine: v.sameEngine.map(x => ({ keyId: x.keyId, ...operatorOf(policy, x.keyId), digest: x.digest, engineId: x.engineId, countedAs: x.countedAs })),
    published: v.published
  }
  if (v.consensusDigest !== undefined) out.consensusDigest = v.consensusDigest
  if (v.leadingDigest !== undefined) out.leadingDigest = v.leadingDigest
  if (lastClaimAt !== undefined) out.lastClaimAt = lastClaimAt
  if (v.reason !== undefined) out.reason = v.reason
  return out
}

/**
 * The one way to a verdict: from the policy, the announcements, the verified claims, the
 * published digests and the keys set aside, the verdict of every announced target (and,
 * with `claimedTargets`, of every claimed one). The HTTP API, the dashboard and feed,
 * `status`, `verify`, `verify-image`, `attest` and `devnet` all ask it. Pure over its
 * inputs: the same inputs in any order give the same answer.
 */
export function judge (input: JudgeInput): Judgement {
  const { policy } = input
  const expectedTargets: Target[] = input.announcements.flatMap(a => announcementTargets(a))
  const expected = new Set(expectedTargets.map(targetKey))
  // Grouped once: the verdicts and the summaries below read the same lists.
  const groups = groupByTarget(input.claims, expectedTargets)
  if (input.claimedTargets !== true) for (const [k, g] of groups) if (g.expected === undefined) groups.delete(k)
  const all = verdictsOfGroups(groups, {
    policy,
    ...(input.published !== undefined ? { published: input.published } : {}),
    ...(input.setAside !== undefined ? { setAside: input.setAside } : {})
  })
  // Announced targets first, in the announcements' order; then any only claims name, by key.
  const byKey = new Map(all.map(v => [v.key, v]))
  const verdicts: TargetVerdict[] = []
  for (const k of expected) {
    const v = byKey.get(k)
    if (v !== undefined) verdicts.push(v)
  }
  if (input.claimedTargets === true) for (const v of all) if (!expected.has(v.key)) verdicts.push(v)
  return { verdicts, targets: verdicts.map(v => targetConsensus(policy, v, groups.get(v.key)?.claims ?? [])) }
}

export interface ReleaseInput {
  policy: TrustPolicy
  /** The announcement the verdicts rest on (see `pickAnnouncement`). */
  chosen: StoredAnnouncement
  /** Other announcements of the tag, listed. */
  others: StoredAnnouncement[]
  /** Stored claims; those for another repository or commit are left out. */
  claims: StoredClaim[]
  published?: ReadonlyMap<string, string> | undefined
  setAside?: ReadonlyMap<string, string> | undefined
}

export interface ReleaseEvaluation {
  consensus: TagConsensus
  /** The protocol's verdicts for the announced targets, in announcement order (for VSAs). */
  verdicts: TargetVerdict[]
}

/** `judge` for one announced release, with the announcement it rests on: what `status` prints and the HTTP API serves. */
export function evaluateRelease (input: ReleaseInput): ReleaseEvaluation {
  const { policy, chosen } = input
  const a = chosen.announcement
  const claims = judgedClaims(input.claims.filter(m => m.claim.target.repository === a.repository && m.claim.target.commit === a.commit))
  const { verdicts, targets } = judge({ policy, announcements: [a], claims, published: input.published, setAside: input.setAside })
  return {
    verdicts,
    consensus: {
      repository: a.repository,
      tag: a.tag,
      commit: a.commit,
      recipe: a.recipe,
      announcement: announcementSummary(policy, chosen),
      otherAnnouncements: input.others.map(m => announcementSummary(policy, m)),
      status: worstStatus(targets.map(t => t.status)),
      targets
    }
  }
}
