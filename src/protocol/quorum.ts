import type { TrustPolicy } from './policy.js'
import { targetKey } from './target.js'
import type { Claim, Digest, Failure, FailureClass, PublishedMatch, Target, VerdictStatus } from './types.js'

/** What of a claim the verdict reads: a whole `Claim` is one. */
export type CountedClaim = Pick<Claim, 'target' | 'finishedOn' | 'failure'> & { result?: { manifestDigest: Digest } } & {
  /** Only the engine id is read: votes from one engine count once. */
  environment?: { engine: { id?: string } }
}

/** A claim whose envelope verified; `keyId` is the verified signer, `id` the envelope id. */
export interface VerifiedClaim {
  claim: CountedClaim
  keyId: string
  id: string
}

export interface BuilderVote {
  keyId: string
  name: string
  operator: string
  /** Manifest digest the builder got. */
  digest: Digest
  /** Envelope id of the claim (the smallest, when the key repeated it). */
  claimId: string
  /** Engine ids its claims for this digest name (`environment.engine.id`). */
  engineIds?: string[]
}

/** A vote not counted because another key's vote for the same digest came from the same engine. */
export interface SameEngineVote {
  keyId: string
  name: string
  digest: Digest
  engineId: string
  /** The key whose vote counted for that engine. */
  countedAs: string
  /** Envelope id of the claim folded in: it was read and judged, so a VSA lists it. */
  claimId: string
}

export interface TargetVerdict {
  target: Target
  /** `targetKey(target)` */
  key: string
  status: VerdictStatus
  /** The agreed manifest digest; set only when `reproducible`. */
  consensusDigest?: Digest
  /** The digest with the most trusted votes (ties: more operators, then the smaller digest). */
  leadingDigest?: Digest
  /** Trusted votes for the leading digest. */
  agreeing: BuilderVote[]
  /** Trusted votes for any other digest. */
  dissenting: BuilderVote[]
  /** Trusted builders that only reported failures (their latest failure). */
  failed: Array<{ keyId: string, name?: string, failure: Failure, claimId: string }>
  /** Claims from keys outside the policy: shown, never counted. */
  untrusted: Array<{ keyId: string, digest?: Digest, failureClass?: FailureClass }>
  /** Trusted votes folded into another key's because both came from one engine. */
  sameEngine: SameEngineVote[]
  /** Trusted keys that signed two or more different digests for this target: excluded. */
  equivocating: Array<{ keyId: string, name?: string, digests: Digest[] }>
  /** Trusted keys with claims on this target that the input set aside (a proven split view): excluded. */
  setAside: Array<{ keyId: string, name?: string, reason: string }>
  published: { digest?: Digest, match: PublishedMatch }
  threshold: number
  /** Trusted builders that answered (voted, failed or equivocated). */
  trustedCount: number
  /** Trusted builders of the policy that have not answered yet. */
  outstanding: number
  /** Distinct operators among `agreeing`. */
  operators: string[]
  /** Why an `unsettled` target cannot settle: `3 of 3 answered from 1 engine; threshold 2`. */
  reason?: string
}

export interface VerdictInput {
  claims: VerifiedClaim[]
  policy: TrustPolicy
  /** Published manifest digest by `targetKey`. */
  published?: ReadonlyMap<string, string>
  /** Targets to report even without claims (from trusted announcements). */
  expectedTargets?: Target[]
  /**
   * Builder keys not to count, with the reason (a log proven to show two views): like an
   * equivocating key, one with claims on a target has answered there and is listed; none is
   * ever outstanding, since nothing it signs can count.
   */
  setAside?: ReadonlyMap<string, string>
}

interface KeyEvidence {
  digests: Map<Digest, string>
  engines: Map<Digest, Set<string>>
  failures: Array<{ failure: Failure, finishedOn: string, id: string }>
}

const byString = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
// Lists of strings alone are sorted by `sort()` itself: the same order (UTF-16 code units)
// without a call into a comparator per comparison (a key that signed thousands of digests).

/**
 * One engine is one witness: votes for one digest from keys whose claims name the same engine
 * id count once, as the vote of the smallest key id (docs/consensus.md, "One vote per engine").
 * BuildKit runs identical in-flight steps once for every build on an engine, so such votes are
 * not independent. Different digests from one engine stay separate votes: they are evidence.
 */
function oneVotePerEngine (votes: BuilderVote[]): { counted: BuilderVote[], sameEngine: SameEngineVote[] } {
  const counted: BuilderVote[] = []
  const sameEngine: SameEngineVote[] = []
  const witness = new Map<string, BuilderVote>()
  for (const v of [...votes].sort((x, y) => byString(x.keyId, y.keyId))) {
    const ids = v.engineIds ?? []
    const shared = ids.find(id => witness.has(`${v.digest} ${id}`))
    const first = shared !== undefined ? witness.get(`${v.digest} ${shared}`) as BuilderVote : v
    if (shared !== undefined) sameEngine.push({ keyId: v.keyId, name: v.name, digest: v.digest, engineId: shared, countedAs: first.keyId, claimId: v.claimId })
    else counted.push(v)
    for (const id of ids) if (!witness.has(`${v.digest} ${id}`)) witness.set(`${v.digest} ${id}`, first)
  }
  return { counted, sameEngine }
}

function verdictFor (key: string, base: Target, claims: VerifiedClaim[], policy: TrustPolicy, published: string | undefined, setAside: ReadonlyMap<string, string> | undefined): TargetVerdict {
  const k = policy.threshold
  const m = policy.minOperators
  const a = policy.allowedDissent
  const trusted = new Map<string, KeyEvidence>()
  const untrustedSeen = new Map<string, { keyId: string, digest?: Digest, failureClass?: FailureClass }>()
  const asideSeen = new Map<string, { keyId: string, name: string, reason: string }>()
  for (const c of claims) {
    const builder = policy.builderById.get(c.keyId)
    if (builder === undefined) {
      const entry = c.claim.result !== undefined
        ? { keyId: c.keyId, digest: c.claim.result.manifestDigest }
        : { keyId: c.keyId, failureClass: c.claim.failure?.class }
      untrustedSeen.set(`${entry.keyId} ${entry.digest ?? ''} ${entry.failureClass ?? ''}`, entry)
      continue
    }
    // A broken host is no answer about the source: the builder stays outstanding (docs/consensus.md).
    if (c.claim.result === undefined && c.claim.failure?.class === 'infrastructure-error') continue
    const reason = setAside?.get(c.keyId)
    if (reason !== undefined) {
      asideSeen.set(c.keyId, { keyId: c.keyId, name: builder.name, reason })
      continue
    }
    let ev = trusted.get(c.keyId)
    if (ev === undefined) {
      ev = { digests: new Map(), engines: new Map(), failures: [] }
      trusted.set(c.keyId, ev)
    }
    if (c.claim.result !== undefined) {
      const d = c.claim.result.manifestDigest
      const prev = ev.digests.get(d)
      if (prev === undefined || c.id < prev) ev.digests.set(d, c.id)
      const engineId = c.claim.environment?.engine.id
      if (engineId !== undefined) ev.engines.set(d, (ev.engines.get(d) ?? new Set()).add(engineId))
    } else if (c.claim.failure !== undefined) {
      ev.failures.push({ failure: c.claim.failure, finishedOn: c.claim.finishedOn, id: c.id })
    }
  }

  const keyVotes: BuilderVote[] = []
  const failed: TargetVerdict['failed'] = []
  const equivocating: TargetVerdict['equivocating'] = []
  for (const [keyId, ev] of trusted) {
    const builder = policy.builderById.get(keyId)
    if (builder === undefined) continue
    if (ev.digests.size > 1) {
      equivocating.push({ keyId, name: builder.name, digests: [...ev.digests.keys()].sort() })
    } else if (ev.digests.size === 1) {
      const [digest, claimId] = [...ev.digests][0] as [string, string]
      const engineIds = [...(ev.engines.get(digest) ?? [])].sort()
      keyVotes.push({ keyId, name: builder.name, operator: builder.operator, digest, claimId, ...(engineIds.length > 0 ? { engineIds } : {}) })
    } else {
      // The latest failure speaks for the key; ties broken by id so order never matters.
      const latest = ev.failures.reduce((x, y) => {
        const tx = Date.parse(x.finishedOn)
        const ty = Date.parse(y.finishedOn)
        return ty > tx || (ty === tx && y.id > x.id) ? y : x
      })
      failed.push({ keyId, name: builder.name, failure: latest.failure, claimId: latest.id })
    }
  }

  const { counted, sameEngine } = oneVotePerEngine(keyVotes)
  const votes = counted
  const byDigest = new Map<Digest, BuilderVote[]>()
  for (const v of votes) byDigest.set(v.digest, [...(byDigest.get(v.digest) ?? []), v])
  const ops = (vs: BuilderVote[]): Set<string> => new Set(vs.map(v => v.operator))
  const ranked = [...byDigest.entries()].sort(([da, va], [db, vb]) =>
    vb.length - va.length || ops(vb).size - ops(va).size || byString(da, db))

  const answered = trusted.size + asideSeen.size
  const outstandingBuilders = policy.builders.filter(b => !trusted.has(b.keyId) && setAside?.has(b.keyId) !== true)
  const outstanding = outstandingBuilders.length
  const outstandingOps = new Set(outstandingBuilders.map(b => b.operator))
  const leading = ranked[0]
  const leadingDigest = leading?.[0]
  const agreeing = leading?.[1] ?? []
  const dissenting = votes.filter(v => v.digest !== leadingDigest)

  const settled = (vs: BuilderVote[]): boolean => vs.length >= k && ops(vs).size >= m
  // Best case for a digest: every outstanding builder joins it and no one else dissents.
  const canReach = (vs: BuilderVote[]): boolean =>
    vs.length + outstanding >= k &&
    new Set([...ops(vs), ...outstandingOps]).size >= m &&
    votes.length - vs.length <= a
  const newDigestCanReach = outstanding >= k && outstandingOps.size >= m && votes.length <= a

  let status: VerdictStatus
  if (leading !== undefined && settled(agreeing)) {
    status = dissenting.length <= a ? 'reproducible' : 'unreproducible'
  } else if (byDigest.size >= 2) {
    status = ranked.some(([, vs]) => canReach(vs)) || newDigestCanReach ? 'disputed' : 'unreproducible'
  } else if (byDigest.size === 0 && failed.length > 0 && equivocating.length === 0 && outstanding === 0) {
    status = 'failed'
  } else {
    // Nobody is left to wait for: polling would never end.
    status = outstanding === 0 ? 'unsettled' : 'pending'
  }

  const consensusDigest = status === 'reproducible' ? leadingDigest : undefined
  const match: PublishedMatch = consensusDigest === undefined || published === undefined
    ? 'unknown'
    : consensusDigest === published ? 'yes' : 'no'
  const byKey = (x: { keyId: string }, y: { keyId: string }): number => byString(x.keyId, y.keyId)
  const verdict: TargetVerdict = {
    target: base,
    key,
    status,
    agreeing: [...agreeing].sort(byKey),
    dissenting: dissenting.sort((x, y) => byString(x.digest, y.digest) || byKey(x, y)),
    failed: failed.sort(byKey),
    untrusted: [...untrustedSeen.values()].sort((x, y) => byKey(x, y) || byString(x.digest ?? '', y.digest ?? '') || byString(x.failureClass ?? '', y.failureClass ?? '')),
    sameEngine,
    equivocating: equivocating.sort(byKey),
    setAside: [...asideSeen.values()].sort(byKey),
    published: published !== undefined ? { digest: published, match } : { match },
    threshold: k,
    trustedCount: answered,
    outstanding,
    operators: [...ops(agreeing)].sort()
  }
  if (consensusDigest !== undefined) verdict.consensusDigest = consensusDigest
  if (leadingDigest !== undefined) verdict.leadingDigest = leadingDigest
  if (status === 'unsettled') verdict.reason = unsettledReason(verdict, m, keyVotes.filter(v => v.digest === leadingDigest))
  return verdict
}

/**
 * `3 of 3 answered from 1 engine; threshold 2`: what the answers came to, counted as the
 * quorum counts them (votes sharing an engine id are one engine; a vote naming none is its own).
 */
function unsettledReason (v: TargetVerdict, minOperators: number, votes: BuilderVote[]): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
  const engines = new Set(votes.map(x => x.engineIds?.[0] ?? `key ${x.keyId}`))
  const parts = [`${v.trustedCount} of ${v.trustedCount + v.outstanding} answered${votes.length > 0 ? ` from ${plural(engines.size, 'engine')}` : ''}`]
  if (v.failed.length > 0) parts.push(`${v.failed.length} failed`)
  if (v.equivocating.length > 0) parts.push(`${v.equivocating.length} equivocating`)
  if (v.setAside.length > 0) parts.push(`${v.setAside.length} set aside`)
  const need = `threshold ${v.threshold}${minOperators > 1 ? `, ${plural(minOperators, 'operator')} (${v.operators.length} among the votes)` : ''}`
  return `${parts.join(', ')}; ${need}`
}

/** Claims of one target key, and the target an announcement expects there. */
export interface TargetGroup<C extends VerifiedClaim = VerifiedClaim> {
  expected?: Target
  claims: C[]
}

/**
 * The claims by target key, each list in the order given, with the expected targets (of
 * the smallest tag where two name one key): what `computeVerdicts` judges, built once for
 * callers that read the claims of a target again.
 */
export function groupByTarget<C extends VerifiedClaim> (claims: readonly C[], expectedTargets: readonly Target[] = []): Map<string, TargetGroup<C>> {
  const groups = new Map<string, TargetGroup<C>>()
  for (const t of expectedTargets) {
    const key = targetKey(t)
    const g = groups.get(key)
    if (g === undefined) groups.set(key, { expected: t, claims: [] })
    else if (g.expected === undefined || (t.tag !== undefined && (g.expected.tag === undefined || t.tag < g.expected.tag))) g.expected = t
  }
  for (const c of claims) {
    const key = targetKey(c.claim.target)
    const g = groups.get(key)
    if (g === undefined) groups.set(key, { claims: [c] })
    else g.claims.push(c)
  }
  return groups
}

/** `computeVerdicts` over claims already grouped (`groupByTarget`); the input's own claims and targets are not read. */
export function verdictsOfGroups (groups: ReadonlyMap<string, TargetGroup<VerifiedClaim>>, input: Omit<VerdictInput, 'claims' | 'expectedTargets'>): TargetVerdict[] {
  const out: TargetVerdict[] = []
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key) as TargetGroup
    let trustedTag: string | undefined
    let anyTag: string | undefined
    for (const c of g.claims) {
      const t = c.claim.target.tag
      if (t === undefined) continue
      if (anyTag === undefined || t < anyTag) anyTag = t
      if ((trustedTag === undefined || t < trustedTag) && input.policy.builderById.has(c.keyId)) trustedTag = t
    }
    const tag = g.expected?.tag ?? trustedTag ?? anyTag
    const src = g.expected ?? (g.claims[0] as VerifiedClaim).claim.target
    const target: Target = { repository: src.repository, commit: src.commit, variant: src.variant, platform: src.platform }
    if (tag !== undefined) target.tag = tag
    out.push(verdictFor(key, target, g.claims, input.policy, input.published?.get(key), input.setAside))
  }
  return out
}

/**
 * The verdict for every target that has a claim or is expected, sorted by target key.
 * Pure and deterministic: the order of `claims` never matters. The rules are in
 * docs/consensus.md.
 */
export function computeVerdicts (input: VerdictInput): TargetVerdict[] {
  return verdictsOfGroups(groupByTarget(input.claims, input.expectedTargets), input)
}
