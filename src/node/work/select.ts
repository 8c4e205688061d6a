import { createHash } from 'node:crypto'

/**
 * Which targets of a release this node builds, with no coordinator: pure and clock-injected, so
 * the daemon and the release simulation (benchmarks/sim-release.ts) run the very same code.
 * docs/node.md ("How a node picks work") says it in words.
 */

/**
 * How much slower a build under emulation is expected to be (arm64 under qemu on amd64 is
 * 5-10x for compiling work); only used to compare candidates, never to judge anything.
 */
export const EMULATION_FACTOR = 6

/** Candidates counted ahead of this node beyond what a target needs before it stops looking: the wait would be long anyway. */
const MAX_AHEAD = 64

/** `r`: independent builds each target needs. `buildsPerTarget` of the policy, else threshold + 1 (one spare vote). */
export function buildsPerTarget (policy: { threshold: number, buildsPerTarget?: number }): number {
  return policy.buildsPerTarget ?? policy.threshold + 1
}

/**
 * Rendezvous (highest random weight) score of a key for one target of one release: every node
 * computes the same order of builders for a target without talking, and different targets get
 * unrelated orders, so work spreads across nodes.
 */
export function rendezvousScore (release: string, targetKey: string, keyId: string): number {
  return createHash('sha256').update(release).update('\n').update(targetKey).update('\n').update(keyId).digest().readUIntBE(0, 6)
}

/** A builder that may build a target: trusted by this node's policy, building the target's platform. */
export interface Candidate {
  keyId: string
  /** It builds the target's platform under emulation. */
  emulated: boolean
}

/** Candidates in the order a target asks them: native builders first, then by rendezvous score. */
export function rankCandidates (release: string, targetKey: string, candidates: readonly Candidate[]): Candidate[] {
  const scored = candidates.map(c => ({ c, s: rendezvousScore(release, targetKey, c.keyId) }))
  scored.sort((a, b) => Number(a.c.emulated) - Number(b.c.emulated) || b.s - a.s || (a.c.keyId < b.c.keyId ? -1 : 1))
  return scored.map(x => x.c)
}

/** What this node knows of one target it could build. */
export interface TargetState {
  /** `targetKey(target)`. */
  key: string
  /** The release it belongs to (the announcement id): the rendezvous order is per release. */
  release: string
  /** Its verdict under this node's policy is final (reproducible, unreproducible or failed). */
  settled: boolean
  /** Builders that count for it under this node's policy: claims done, and live notices of builds in progress (one per engine). */
  counted: ReadonlySet<string>
  /** How many of `counted` are done (have claims). */
  done: number
  /** Candidates in `rankCandidates` order (this node among them). */
  ranked: readonly Candidate[]
  /** Expected duration of a native build, ms. */
  expectedMs: number
  /**
   * Builders that hold the base this target is built on (or that is this target), or will
   * once their current build ends, and how long a native build takes for them: the rest of
   * the build, since a node builds each base once per release and reuses it (rebuilder/bases.ts).
   */
  reuse?: { holders: ReadonlySet<string>, ms: number }
  /** Since when it has wanted builds: when it was announced, or when the last notice for it expired or was withdrawn. */
  openSince: number
}

export interface WorkView {
  now: number
  /** This node's key id. */
  self: string
  /** Builds each target needs. */
  r: number
  /**
   * How long a builder waits for each candidate ranked ahead of it that has not taken the
   * target: longer than a notice takes to cross the network, so two nodes rarely take one slot.
   */
  stepMs: number
  /** When a builder with a live notice is expected to be free again; undefined when it is idle. */
  busyUntil: (keyId: string) => number | undefined
  /** When an idle builder was last seen ending a build (its latest claim); undefined when not known. */
  freeSince?: (keyId: string) => number | undefined
}

export type Decision =
  | { key: string, action: 'take' }
  | { key: string, action: 'skip', reason: 'settled' | 'built' | 'covered' }
  | { key: string, action: 'wait', /** Re-evaluate then; undefined: when something changes. */ until?: number }

/** Expected duration of the target's build on a candidate. */
export function expectedOn (c: Candidate, t: Pick<TargetState, 'expectedMs' | 'reuse'>): number {
  const ms = t.reuse?.holders.has(c.keyId) === true ? t.reuse.ms : t.expectedMs
  return c.emulated ? ms * EMULATION_FACTOR : ms
}

/** Each ranking's positions by key, computed once per ranking. */
const positions = new WeakMap<readonly Candidate[], Map<string, number>>()

function positionsOf (ranked: readonly Candidate[]): Map<string, number> {
  let index = positions.get(ranked)
  if (index == null) {
    index = new Map(ranked.map((c, i) => [c.keyId, i]))
    positions.set(ranked, index)
  }
  return index
}

/**
 * The order a target asks its candidates in: the quickest expected build first (native before
 * emulated, holders of its base before those that must build it; at equal times holders
 * first), then `ranked` order. Every node with the same view computes the same order, and
 * giving way follows it. Lazy: a node stops asking at itself.
 */
export function * askOrder (t: Pick<TargetState, 'ranked' | 'expectedMs' | 'reuse'>): Generator<Candidate> {
  // Without holders, `ranked` is already native first.
  if (t.reuse == null || t.reuse.holders.size === 0) { yield * t.ranked; return }
  const { holders, ms } = t.reuse
  const index = positionsOf(t.ranked)
  const held = [...holders].flatMap(k => { const i = index.get(k); return i === undefined ? [] : [i] }).sort((a, b) => a - b).map(i => t.ranked[i]!)
  const groups = [
    { ms, holder: true, emulated: false },
    { ms: ms * EMULATION_FACTOR, holder: true, emulated: true },
    { ms: t.expectedMs, holder: false, emulated: false },
    { ms: t.expectedMs * EMULATION_FACTOR, holder: false, emulated: true }
  ].sort((a, b) => a.ms - b.ms || Number(b.holder) - Number(a.holder))
  for (const g of groups) {
    for (const c of g.holder ? held : t.ranked) {
      if (c.emulated === g.emulated && (g.holder || !holders.has(c.keyId))) yield c
    }
  }
}

/** What this node does about one target now. */
export function decide (t: TargetState, view: WorkView): Decision {
  if (t.settled) return { key: t.key, action: 'skip', reason: 'settled' }
  if (t.done >= view.r) return { key: t.key, action: 'skip', reason: 'built' }
  if (t.counted.has(view.self)) return { key: t.key, action: 'skip', reason: 'covered' }
  const need = view.r - t.counted.size
  if (need <= 0) return { key: t.key, action: 'skip', reason: 'covered' }
  const me = t.ranked.find(c => c.keyId === view.self) ?? { keyId: view.self, emulated: false }
  const mine = expectedOn(me, t)
  const myFinish = view.now + mine
  // Estimates are rough: waiting on a busy builder is worth it only when it saves more than this.
  const margin = mine / 10
  // Candidates ahead of this node that could still take the target and finish it sooner:
  // idle ones, and busy ones that would be done with both well before this node is done with it.
  let ahead = 0
  let aheadFree = t.openSince
  for (const c of askOrder(t)) {
    if (c.keyId === view.self) break
    if (t.counted.has(c.keyId)) continue
    const busy = view.busyUntil(c.keyId)
    if (busy !== undefined) {
      // One past its expected end is about to be free, and counts as idle.
      if (busy > view.now && busy + expectedOn(c, t) > myFinish - margin) continue
      aheadFree = Math.max(aheadFree, busy)
    } else {
      // Its turn began when it was last seen free, not before.
      aheadFree = Math.max(aheadFree, view.freeSince?.(c.keyId) ?? 0)
    }
    ahead++
    if (ahead >= need + MAX_AHEAD) return { key: t.key, action: 'wait' }
  }
  if (ahead < need) return { key: t.key, action: 'take' }
  // Those ahead had their turn and did not take it (they left, or took another target).
  const until = aheadFree + (ahead - need + 1) * view.stepMs
  return until <= view.now ? { key: t.key, action: 'take' } : { key: t.key, action: 'wait', until }
}

/**
 * The order this node asks its targets in: fewest builds counted first, then by its own
 * rendezvous score, so nodes with the same view still start on different targets.
 */
export function workOrder (targets: readonly TargetState[], self: string): TargetState[] {
  return targets.map(t => ({ t, n: t.counted.size, s: rendezvousScore(t.release, t.key, self) }))
    .sort((a, b) => a.n - b.n || b.s - a.s)
    .map(x => x.t)
}

/**
 * Up to `slots` targets to take now, in order, and when to look again (the earliest wait).
 * Taking one counts this node busy: the rest are judged as if its notice were out.
 */
export function chooseWork (targets: readonly TargetState[], view: WorkView, slots = 1): { take: string[], decisions: Decision[], wakeAt?: number } {
  const take: string[] = []
  const decisions: Decision[] = []
  let wakeAt: number | undefined
  for (const t of workOrder(targets, view.self)) {
    const d = take.length >= slots ? { key: t.key, action: 'wait' as const } : decide(t, view)
    decisions.push(d)
    if (d.action === 'take') take.push(t.key)
    else if (d.action === 'wait' && d.until !== undefined) wakeAt = Math.min(wakeAt ?? Infinity, d.until)
  }
  return { take, decisions, ...(wakeAt !== undefined ? { wakeAt } : {}) }
}

/**
 * Whether this node gives way on a target it is building: notices that crossed on the network
 * show more builders than `r` (builds done plus those in progress, one per engine), and this
 * node is among those whose builds would end last (by their notices' start and expected
 * time, so a build well under way never yields to one just begun), then last in the target's
 * order. Builds done cannot give way.
 */
export function mustGiveWay (input: { self: string, r: number, done: number, building: readonly string[], ranked: readonly Candidate[], endsAt?: (keyId: string) => number | undefined }): boolean {
  const over = input.done + input.building.length - input.r
  if (over <= 0) return false
  const index = new Map(input.ranked.map((c, i) => [c.keyId, i]))
  const pos = (k: string): number => index.get(k) ?? input.ranked.length
  const end = (k: string): number => input.endsAt?.(k) ?? 0
  const last = [...input.building].sort((a, b) => end(a) - end(b) || pos(a) - pos(b) || (a < b ? -1 : 1)).slice(-over)
  return last.includes(input.self)
}
