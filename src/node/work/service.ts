import { decodeNotice, NOTICE_LIMITS, signNotice, type Notice } from '../../protocol/notice.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { computeVerdicts } from '../../protocol/quorum.js'
import { targetKey } from '../../protocol/target.js'
import type { Target } from '../../protocol/types.js'
import type { ComponentLogger } from '../logger.js'
import type { Recipe } from '../rebuilder/index.js'
import { componentLog } from '../logger.js'
import type { Job, Store, StoredClaim } from '../store/types.js'
import { createNoticeBook, type LapsedTaker, type NoticeBookInit, type NoticeCheck } from './notices.js'
import { askOrder, buildsPerTarget, chooseWork, EMULATION_FACTOR, expectedOn, mustGiveWay, rankCandidates, type Candidate, type Decision, type TargetState } from './select.js'

/** A builder this node knows of, from its capabilities statement (the daemon's builder table). */
export interface KnownBuilder {
  keyId: string
  trusted: boolean
  self: boolean
  capabilities: { builds: boolean, platforms: Array<{ platform: string, emulated: boolean }> }
}

export interface WorkComponents {
  store: Pick<Store, 'claimsForTarget' | 'claimsForCommit'>
  policy: () => TrustPolicy
  identity: SigningIdentity
  /** Known builders with what they build (this node among them once it has probed its engine). */
  builders: () => KnownBuilder[]
  /** The engine id this node's claims will name; notices carry it so one engine counts once. */
  engineId: () => string | undefined
  /** Sends a signed notice to peers. */
  publish: (data: Uint8Array) => Promise<void>
  /** Told when a target wants builds again (a notice was withdrawn): the scheduler looks again. */
  onReopen?: () => void
  /**
   * Told to give up a build it started: notices that crossed on the network show more than `r`
   * builders on the target, and this node comes last among them in the target's order.
   */
  onYield?: (jobId: string) => void
  /**
   * The recipe a job follows, once known: which base each target is built on, so builders that
   * hold that base (and build on it in a fraction of the time) are asked first.
   */
  recipeOf?: (job: Job) => Recipe | undefined
  logger?: ComponentLogger
}

export interface WorkInit extends NoticeBookInit {
  /** Build every target this node can, as before shared work (`join --build-all`); notices are still sent. */
  buildAll?: boolean
  /** Life of one notice; renewed at half of it while the build runs. */
  noticeTtlMs?: number
  /** See `WorkView.stepMs`. */
  stepMs?: number
  /** Expected build time of a target nothing is known about yet. */
  defaultExpectedMs?: number
}

export interface WorkPlan {
  /** Jobs to start now, in order. */
  take: Job[]
  /** Jobs others' builds (or a settled verdict) make unnecessary for good. */
  covered: Array<{ job: Job, reason: string }>
  /** When to plan again (a wait ends, or a notice expires). */
  wakeAt?: number
}

export interface Work {
  /** Judges a notice from gossip; keeps it when trusted. */
  receive: (data: Uint8Array) => NoticeCheck
  /**
   * Every stored claim: it counts as a build done, and ends its builder's notice. True when
   * this node waits on that target (the queue is worth a new look); false for the rest, so a
   * catch-up of thousands of claims does not replan for each.
   */
  claimStored: (m: StoredClaim) => boolean
  /** Which of these queued jobs to start now with `slots` free. */
  plan: (queued: Job[], slots: number) => Promise<WorkPlan>
  /** A job started: its notice goes out now and is renewed until `finished`. */
  started: (job: Job) => void
  /** A job ended; without a claim its notice is withdrawn so others need not wait for its expiry. */
  finished: (job: Job, claimed: boolean) => void
  lapsed: () => LapsedTaker[]
  /** Builds each target needs under this node's policy. */
  r: () => number
  /** Withdraws this node's live notices. */
  stop: () => Promise<void>
}

const DEFAULTS = { noticeTtlMs: 3 * 60_000, stepMs: 15_000, defaultExpectedMs: 20 * 60_000 }
/** A base target on a node that built that base for an app of the release: read from its cache (rebuilder/bases.ts), checkout and signing left. */
const REUSE_MS = 30_000

/** The base a variant is (a base of others), or is built on, in its recipe; undefined when neither, or several. */
export function reuseBase (recipe: Recipe | undefined, variant: string): string | undefined {
  const v = recipe?.variants.find(x => x.name === variant)
  if (recipe == null || v == null) return undefined
  const from = Object.values(v.from ?? {})
  if (from.length === 1) return from[0]
  if (from.length === 0 && recipe.variants.some(o => Object.values(o.from ?? {}).includes(variant))) return variant
  return undefined
}
const SETTLED = new Set(['reproducible', 'unreproducible', 'failed'])

export function createWork (components: WorkComponents, init: WorkInit = {}): Work {
  const log = componentLog(components.logger, 'work')
  const ttl = Math.min(init.noticeTtlMs ?? DEFAULTS.noticeTtlMs, NOTICE_LIMITS.maxTtlMs)
  const stepMs = init.stepMs ?? DEFAULTS.stepMs
  const book = createNoticeBook({ policy: components.policy }, init)
  /** Learned expected durations by `variant platform` (from claims' own start and finish). */
  const durations = new Map<string, number>()
  const firstSeen = new Map<string, number>()
  const own = new Map<string, { notice: Notice, job: Job, asked: Pick<TargetState, 'expectedMs' | 'reuse'>, timer?: NodeJS.Timeout }>()
  const rankings = new Map<string, { sig: string, ranked: Candidate[] }>()
  /** Trusted builders with a claim per target, and the engine each named: bounded like the rest. */
  const doneBy = new Map<string, Map<string, string>>()
  /** When each trusted builder last ended a build (its latest claim's finish): bounded like the rest. */
  const lastFinished = new Map<string, number>()
  /** Notices being published: a stopping node lets its withdrawals out before the network goes. */
  const inFlight = new Set<Promise<void>>()
  /** Targets the last plan left waiting. */
  let waiting = new Set<string>()
  /** The targets the last plan took: this node's expected build (quicker on a base it holds), and who held the base. */
  let planned = new Map<string, { ms: number, asked: Pick<TargetState, 'expectedMs' | 'reuse'> }>()

  function expectedMs (t: Job['target']): number {
    return durations.get(`${t.variant} ${t.platform}`) ?? init.defaultExpectedMs ?? DEFAULTS.defaultExpectedMs
  }

  /**
   * A target's expected native build from scratch, and on a builder holding its base. An app's
   * learned time may include its base or not (it was built on a held one): one shorter than
   * its base's is taken for the app's own part.
   */
  function expectations (t: Target, base: string | undefined): { fresh: number, reuse?: number } {
    const own = expectedMs(t)
    if (base === undefined) return { fresh: own }
    if (base === t.variant) return { fresh: own, reuse: Math.min(REUSE_MS, own) }
    const baseMs = durations.get(`${base} ${t.platform}`)
    if (baseMs === undefined) return { fresh: own }
    const appOnly = own < baseMs ? own : own - baseMs
    return { fresh: appOnly + baseMs, reuse: appOnly }
  }

  /**
   * Trusted builders that hold the base a target is or is built on (for the same commit and
   * platform: a claim on it or on an app built on it), or will once the build their live
   * notice is for ends.
   */
  function holdersOf (job: Job, base: string, recipe: Recipe | undefined, claims: readonly StoredClaim[], now: number): Set<string> {
    const policy = components.policy()
    const self = components.identity.keyId
    const on = (t: Target): boolean => t.repository === job.target.repository && t.commit === job.target.commit && t.platform === job.target.platform
    const holders = new Set<string>()
    for (const c of claims) {
      if (c.claim.result == null || !on(c.claim.target) || (c.keyId !== self && !policy.builderKeys.has(c.keyId))) continue
      if (c.claim.target.variant === base || c.claim.bases?.some(b => b.variant === base) === true) holders.add(c.keyId)
    }
    for (const n of book.liveAll(now)) if (on(n.notice.target) && reuseBase(recipe, n.notice.target.variant) === base) holders.add(n.keyId)
    return holders
  }

  function candidates (release: string, key: string, platform: string): Candidate[] {
    const policy = components.policy()
    const list: Candidate[] = []
    for (const b of components.builders()) {
      if (!b.self && !policy.builderKeys.has(b.keyId)) continue
      if (!b.capabilities.builds) continue
      const p = b.capabilities.platforms.find(x => x.platform === platform)
      if (p != null) list.push({ keyId: b.keyId, emulated: p.emulated })
    }
    if (!list.some(c => c.keyId === components.identity.keyId)) list.push({ keyId: components.identity.keyId, emulated: false })
    const sig = list.map(c => `${c.keyId}${c.emulated ? '~' : ''}`).join(',')
    const cacheKey = `${release} ${key}`
    const hit = rankings.get(cacheKey)
    if (hit?.sig === sig) return hit.ranked
    const ranked = rankCandidates(release, key, list)
    if (rankings.size > 4096) rankings.delete(rankings.keys().next().value as string)
    rankings.set(cacheKey, { sig, ranked })
    return ranked
  }

  async function stateOf (job: Job, now: number, holdersFor: (job: Job, base: string, recipe: Recipe | undefined) => Promise<Set<string>>): Promise<TargetState> {
    const policy = components.policy()
    const key = job.id
    const claims = await components.store.claimsForTarget(key)
    const counted = new Set<string>()
    const engines = new Set<string>()
    const count = (keyId: string, engineId: string | undefined): void => {
      if (counted.has(keyId)) return
      // One engine is one witness, as the quorum counts it.
      if (engineId !== undefined && engines.has(engineId)) return
      if (engineId !== undefined) engines.add(engineId)
      counted.add(keyId)
    }
    const trusted = claims.filter(c => policy.builderKeys.has(c.keyId) && !(c.claim.result == null && c.claim.failure?.class === 'infrastructure-error'))
    for (const c of trusted) count(c.keyId, c.claim.environment.engine.id)
    const done = counted.size
    for (const n of book.live(key, now)) count(n.keyId, n.notice.engineId)
    const verdict = computeVerdicts({ claims: trusted.map(c => ({ claim: c.claim, keyId: c.keyId, id: c.id })), policy, expectedTargets: [job.target] })[0]
    if (!firstSeen.has(key)) {
      if (firstSeen.size > 65_536) firstSeen.delete(firstSeen.keys().next().value as string)
      firstSeen.set(key, now)
    }
    const recipe = components.recipeOf?.(job)
    const base = reuseBase(recipe, job.target.variant)
    const { fresh, reuse } = expectations(job.target, base)
    return {
      key,
      release: job.announcementId,
      settled: verdict != null && SETTLED.has(verdict.status),
      counted,
      done,
      ranked: candidates(job.announcementId, key, job.target.platform),
      expectedMs: fresh,
      ...(base !== undefined && reuse !== undefined ? { reuse: { holders: await holdersFor(job, base, recipe), ms: reuse } } : {}),
      openSince: Math.max(firstSeen.get(key) ?? now, book.reopenedAt(key) ?? 0)
    }
  }

  function publishOwn (key: string): void {
    const entry = own.get(key)
    if (entry == null) return
    const now = Date.now()
    entry.notice = { ...entry.notice, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + ttl).toISOString() }
    send(entry.notice)
    entry.timer = setTimeout(() => { publishOwn(key) }, Math.max(1000, ttl / 2))
    entry.timer.unref()
    // Notices that arrived before this node started count too; after the build has begun, so
    // giving way aborts a build rather than racing its start.
    setImmediate(() => { yieldIfOversubscribed(key) })
  }

  function send (notice: Notice): void {
    try {
      const text = JSON.stringify(signNotice(notice, components.identity))
      book.keepOwn(decodeNotice(text))
      const sending = components.publish(Buffer.from(text, 'utf8')).catch((err: unknown) => { log.debug({ err }, 'publishing a notice failed') })
      inFlight.add(sending)
      void sending.finally(() => inFlight.delete(sending))
    } catch (err) {
      log.warn({ err }, 'signing a notice failed')
    }
  }

  function withdraw (key: string): void {
    const entry = own.get(key)
    if (entry == null) return
    clearTimeout(entry.timer)
    own.delete(key)
    const now = Date.now()
    send({ ...entry.notice, withdrawn: true, issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + 60_000).toISOString() })
  }

  /**
   * Two nodes may take one slot when their notices cross (each saw the other idle): the one
   * later in the target's rendezvous order gives way, so a target gets no more than r builds
   * for longer than a notice takes to travel.
   */
  function yieldIfOversubscribed (key: string): void {
    const mine = own.get(key)
    if (mine == null || init.buildAll === true) return
    const self = components.identity.keyId
    const engines = new Set([mine.notice.engineId])
    let done = 0
    for (const [keyId, engineId] of doneBy.get(key) ?? []) {
      if (keyId === self || engines.has(engineId)) continue
      engines.add(engineId)
      done++
    }
    const building = [self]
    const ends = new Map([[self, Date.parse(mine.notice.startedAt) + mine.notice.expectedMs]])
    for (const n of book.live(key)) {
      if (n.keyId === self || engines.has(n.notice.engineId)) continue
      engines.add(n.notice.engineId)
      building.push(n.keyId)
      ends.set(n.keyId, Date.parse(n.notice.startedAt) + n.notice.expectedMs)
    }
    // The target's asking order as this node saw it when it took the target.
    const ranked = [...askOrder({ ...mine.asked, ranked: candidates(mine.job.announcementId, key, mine.job.target.platform) })]
    if (mustGiveWay({ self, r: buildsPerTarget(components.policy()), done, building, ranked, endsAt: k => ends.get(k) })) {
      log.info({ job: key, building: building.length, done }, 'giving way: more builders took this target than it needs, and this node comes last in its order')
      components.onYield?.(key)
    }
  }

  return {
    receive (data) {
      const before = book.size()
      const check = book.receive(data)
      if (check.verdict === 'accept' && check.decoded?.notice.withdrawn === true && book.size() <= before) components.onReopen?.()
      else if (check.verdict === 'accept' && check.decoded != null) yieldIfOversubscribed(targetKey(check.decoded.notice.target))
      return check
    },

    claimStored (m) {
      const key = targetKey(m.claim.target)
      book.claimed(m.keyId, key)
      if (components.policy().builderKeys.has(m.keyId) && !(m.claim.result == null && m.claim.failure?.class === 'infrastructure-error')) {
        if (!doneBy.has(key) && doneBy.size >= 4096) doneBy.delete(doneBy.keys().next().value as string)
        doneBy.set(key, (doneBy.get(key) ?? new Map<string, string>()).set(m.keyId, m.claim.environment.engine.id ?? `key:${m.keyId}`))
        yieldIfOversubscribed(key)
      }
      const finished = Math.min(Date.parse(m.claim.finishedOn), Date.now())
      if (Number.isFinite(finished) && finished > (lastFinished.get(m.keyId) ?? 0) && components.policy().builderKeys.has(m.keyId)) {
        lastFinished.delete(m.keyId)
        if (lastFinished.size >= 4096) lastFinished.delete(lastFinished.keys().next().value as string)
        lastFinished.set(m.keyId, finished)
      }
      const ms = Date.parse(m.claim.finishedOn) - Date.parse(m.claim.startedOn)
      if (m.claim.result != null && Number.isFinite(ms) && ms > 0 && components.policy().builderKeys.has(m.keyId)) {
        // Emulated builds say so: learn the native time.
        const native = m.claim.environment.emulated ? ms / EMULATION_FACTOR : ms
        if (durations.size > 4096) durations.delete(durations.keys().next().value as string)
        durations.set(`${m.claim.target.variant} ${m.claim.target.platform}`, Math.round(native))
      }
      return waiting.has(key)
    },

    async plan (queued, slots) {
      const now = Date.now()
      const expiry = book.prune(now)
      if (init.buildAll === true) return { take: queued.slice(0, slots), covered: [] }
      const byKey = new Map(queued.map(j => [j.id, j]))
      // Claims of each commit, read once per plan: who holds which base.
      const byCommit = new Map<string, Promise<StoredClaim[]>>()
      // Holders of each base, worked out once per plan: the apps on a base share them.
      const byBase = new Map<string, Promise<Set<string>>>()
      const holdersFor = async (j: Job, base: string, recipe: Recipe | undefined): Promise<Set<string>> => {
        const t = j.target
        const k = `${t.repository} ${t.commit}`
        const hk = `${k} ${t.platform} ${base}`
        if (!byBase.has(hk)) {
          if (!byCommit.has(k)) byCommit.set(k, components.store.claimsForCommit(t.repository, t.commit, components.policy().builderKeys.keys()))
          byBase.set(hk, (byCommit.get(k) as Promise<StoredClaim[]>).then(claims => holdersOf(j, base, recipe, claims, now)))
        }
        return await (byBase.get(hk) as Promise<Set<string>>)
      }
      const states = await Promise.all(queued.map(async j => await stateOf(j, now, holdersFor)))
      const self = components.identity.keyId
      const { take, decisions, wakeAt } = chooseWork(states, { now, self, r: buildsPerTarget(components.policy()), stepMs, busyUntil: k => k === self ? undefined : book.busyUntil(k, now), freeSince: k => lastFinished.get(k) }, slots)
      const covered = decisions.flatMap((d: Decision) => d.action === 'skip' && d.reason !== 'covered'
        ? [{ job: byKey.get(d.key) as Job, reason: d.reason === 'settled' ? 'its verdict is settled' : `${buildsPerTarget(components.policy())} builds counted under this node's policy are done` }]
        : [])
      waiting = new Set(decisions.filter(d => d.action === 'wait' || (d.action === 'skip' && d.reason === 'covered')).map(d => d.key))
      planned = new Map(states.filter(t => take.includes(t.key)).map(t => [t.key, { ms: expectedOn(t.ranked.find(c => c.keyId === self) ?? { keyId: self, emulated: false }, t), asked: { expectedMs: t.expectedMs, ...(t.reuse != null ? { reuse: t.reuse } : {}) } }]))
      const wake = Math.min(wakeAt ?? Infinity, expiry ?? Infinity)
      return { take: take.map(k => byKey.get(k) as Job), covered, ...(wake !== Infinity ? { wakeAt: wake } : {}) }
    },

    started (job) {
      const engineId = components.engineId() ?? `key:${components.identity.keyId}`
      const now = new Date().toISOString()
      const caps = components.builders().find(b => b.self)?.capabilities.platforms.find(p => p.platform === job.target.platform)
      const plan = planned.get(job.id)
      const expected = Math.round(plan?.ms ?? expectedMs(job.target) * (caps?.emulated === true ? EMULATION_FACTOR : 1))
      own.set(job.id, { job, asked: plan?.asked ?? { expectedMs: expectedMs(job.target) }, notice: { target: job.target, engineId, expectedMs: Math.min(expected, NOTICE_LIMITS.maxExpectedMs), startedAt: now, issuedAt: now, expiresAt: now } })
      publishOwn(job.id)
    },

    finished (job, claimed) {
      if (claimed) {
        const entry = own.get(job.id)
        clearTimeout(entry?.timer)
        own.delete(job.id)
        return
      }
      withdraw(job.id)
    },

    lapsed: () => book.lapsed(),
    r: () => buildsPerTarget(components.policy()),

    async stop () {
      for (const key of [...own.keys()]) withdraw(key)
      await Promise.race([Promise.allSettled([...inFlight]), new Promise(resolve => setTimeout(resolve, 2_000).unref())])
    }
  }
}
