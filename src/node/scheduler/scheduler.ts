import { announcementTargets } from '../../protocol/announcement.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { signClaim } from '../../protocol/messages.js'
import type { TestResult } from '../../protocol/test-result.js'
import { targetKey } from '../../protocol/target.js'
import type { Claim } from '../../protocol/types.js'
import { RecipeError, recipeDigest, RequirementsError, TargetError, type BuildProgress, type Recipe, type SmokeOutcome } from '../rebuilder/index.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import type { Ingest } from '../ingest/index.js'
import type { Job, Store, StoredMessage } from '../store/types.js'
import { JobNotFoundError, JobNotRetryableError, SchedulerStoppedError } from './errors.js'
import { BuildFacts } from './order.js'
import { builtinRecipe, canBuildTarget } from './requirements.js'
import type { HostHealth, RunningBuild, SchedulerCapabilities, SchedulerInit, SchedulerRebuilder } from './types.js'
import type { Work } from '../work/index.js'

export interface SchedulerComponents extends SchedulerCapabilities {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  store: Store
  /** Where the claims this node signs are verified and stored, like every other message. */
  ingest: Pick<Ingest, 'record'>
  /** Absent on an observer node. */
  rebuilder?: SchedulerRebuilder
  identity: SigningIdentity
  /** Publishes a signed claim to peers; a failure to publish is logged, the claim stays stored. */
  publishClaim: (envelopeJson: string) => Promise<void>
  /** Told of each claim this node signed and stored. */
  onClaim?: (claim: Claim, id: string) => void
  /**
   * Takes the outcome of the smoke test the engine ran in an image this node rebuilt (after the
   * image's claim), to be signed once the quorum agrees on that image (test-results/agreed.ts);
   * without it smoke test outcomes are only logged.
   */
  onTestResult?: (testResult: TestResult) => Promise<void>
  /** Shares a release's targets with other nodes (src/node/work); absent: every queued job is built. */
  work?: Pick<Work, 'plan' | 'started' | 'finished'>
}

export interface Scheduler {
  start: () => Promise<void>
  /** Aborts running builds (their jobs go back to the queue) and waits for them to settle. */
  stop: () => Promise<void>
  /**
   * Queues the targets of a verified announcement that this node can build; returns the new
   * jobs. Calls run one after another, so two announcements of one target make one job.
   */
  enqueue: (announcement: StoredMessage) => Promise<Job[]>
  /** Jobs running now. */
  running: () => string[]
  /** Builds running now, with where each is. */
  progress: () => RunningBuild[]
  /** Resolves when nothing is queued (that may start now) or running. */
  idle: () => Promise<void>
  /** Whether this host builds, or stopped after infrastructure errors (and why). */
  health: () => HostHealth
  /**
   * Requeues a job by hand (`jobs retry`): a broken, failed or refused one, or a queued one
   * waiting out its back-off. Clears a broken host: the operator says it is fixed.
   */
  retry: (id: string) => Promise<Job>
  /** Told of every stored claim, any node's: how long its variant takes, and which variants are bases. */
  learn: (claim: Claim) => void
  /** Looks at the queue again (a target others were building wants builds again). */
  reconsider: () => void
  /** The recipe a job's rebuild follows, once known (its digest's, else the built-in of its name). */
  recipeOf: (job: Job) => Recipe | undefined
  /** Stops a running build without counting it as an attempt; its job goes back to the queue. */
  giveUp: (id: string) => void
}

const DEFAULTS = { concurrency: 1, maxAttempts: 3, backoffMs: 30_000, maxBackoffMs: 30 * 60_000, progressIntervalMs: 60_000 }

export function createScheduler (components: SchedulerComponents, init: SchedulerInit = {}): Scheduler {
  const log = componentLog(components.logger, 'scheduler')
  const { store } = components
  const concurrency = Math.max(1, Math.floor(init.concurrency ?? DEFAULTS.concurrency))
  const maxAttempts = Math.max(1, Math.floor(init.maxAttempts ?? DEFAULTS.maxAttempts))
  const backoffMs = init.backoffMs ?? DEFAULTS.backoffMs
  const maxBackoffMs = init.maxBackoffMs ?? DEFAULTS.maxBackoffMs
  const recipes = new Map<string, Recipe | null>()
  const progressIntervalMs = init.progressIntervalMs ?? DEFAULTS.progressIntervalMs
  const maxAgeMs = init.maxAnnouncementAgeMs ?? 0
  const active = new Map<string, { controller: AbortController, done: Promise<void>, build?: RunningBuild, ticker?: NodeJS.Timeout }>()
  let started = false
  let stopping = false
  let timer: NodeJS.Timeout | undefined
  let pumping: Promise<void> | undefined
  let pumpAgain = false
  let idleWaiters: Array<() => void> = []
  let enqueueing: Promise<unknown> = Promise.resolve()
  let health: HostHealth = { state: 'ok' }
  const facts = new BuildFacts()

  const now = (): string => new Date().toISOString()

  async function saveJob (job: Job, patch: Partial<Job>): Promise<Job> {
    const next = { ...job, ...patch, updatedAt: now() }
    await store.putJob(next)
    return next
  }

  function schedulePump (delayMs = 0): void {
    if (!started || stopping) return
    if (delayMs > 0) {
      if (timer != null) clearTimeout(timer)
      timer = setTimeout(() => { timer = undefined; schedulePump() }, delayMs)
      timer.unref()
      return
    }
    if (pumping != null) { pumpAgain = true; return }
    pumping = pump().catch((err: unknown) => { log.error({ err }, 'scheduler loop failed') }).finally(() => {
      pumping = undefined
      if (pumpAgain) { pumpAgain = false; schedulePump() }
    })
  }

  /** Starts queued jobs up to the concurrency, and arms a timer for the earliest backoff. */
  async function pump (): Promise<void> {
    // A broken host builds nothing more until an operator retries: it would only fail again.
    if (components.rebuilder == null || (health.state === 'broken' && active.size === 0)) { notifyIdle(); return }
    if (health.state === 'broken') return
    const queued = await store.listJobs('queued')
    const t = Date.now()
    let earliest = Infinity
    const ready: Job[] = []
    // Bases first, then the longest expected builds (order.ts).
    for (const job of facts.order(queued, j => facts.recipe(j.recipe.digest) ?? recipes.get(j.recipe.name), components.capabilities())) {
      if (active.has(job.id)) continue
      if (job.notBefore != null && job.notBefore > t) { earliest = Math.min(earliest, job.notBefore); continue }
      ready.push(job)
    }
    let toStart = ready
    if (components.work != null && ready.length > 0 && !stopping && active.size < concurrency) {
      // Shared work: only what this node's turn is, and nothing others cover.
      const plan = await components.work.plan(ready, concurrency - active.size)
      for (const { job, reason } of plan.covered) {
        await saveJob(job, { state: 'covered', lastError: reason })
        log.info({ job: job.id, reason }, 'not building: covered')
      }
      if (plan.wakeAt !== undefined) earliest = Math.min(earliest, plan.wakeAt)
      toStart = plan.take
    }
    for (const job of toStart) {
      if (stopping || active.size >= concurrency) break
      const controller = new AbortController()
      const entry: { controller: AbortController, done: Promise<void>, ticker?: NodeJS.Timeout } = { controller, done: Promise.resolve() }
      active.set(job.id, entry)
      entry.done = runJob(job, controller.signal)
        .catch((err: unknown) => { log.error({ err, job: job.id }, 'job bookkeeping failed') })
        .finally(() => { clearInterval(entry.ticker); active.delete(job.id); schedulePump() })
    }
    if (earliest !== Infinity) schedulePump(Math.max(1, earliest - Date.now()))
    if (active.size === 0 && (components.work != null || !queued.some(j => j.notBefore == null || j.notBefore <= Date.now()))) notifyIdle()
  }

  function notifyIdle (): void {
    const waiters = idleWaiters
    idleWaiters = []
    for (const w of waiters) w()
  }

  async function runJob (queuedJob: Job, signal: AbortSignal): Promise<void> {
    const job = await saveJob(queuedJob, { state: 'running', attempts: queuedJob.attempts + 1, notBefore: undefined })
    log.info({ job: job.id, attempt: job.attempts }, 'build started')
    const started = Date.now()
    const build: RunningBuild = { job, startedAt: new Date(started).toISOString(), elapsedMs: 0 }
    const entry = active.get(job.id)
    if (entry != null) entry.build = build
    components.work?.started(job)
    let claimed = false
    try {
      claimed = await buildJob(job, build, started, entry, signal)
    } finally {
      components.work?.finished(job, claimed)
    }
  }

  /** Builds, signs and publishes one job; true when a claim was signed. */
  async function buildJob (startedJob: Job, build: RunningBuild, started: number, entry: { ticker?: NodeJS.Timeout } | undefined, signal: AbortSignal): Promise<boolean> {
    const rebuilder = components.rebuilder as SchedulerRebuilder
    let job = startedJob
    const t = job.target
    // A Neko target takes tens of minutes: say where it is at a steady pace, not only at the end.
    const ticker = setInterval(() => {
      log.info({ job: job.id, phase: build.phase, step: build.step, elapsed: formatDuration(Date.now() - started), log: build.logPath }, 'building')
    }, progressIntervalMs)
    ticker.unref()
    if (entry != null) entry.ticker = ticker
    const onProgress = (p: BuildProgress): void => {
      if (build.logPath == null && p.logPath != null) log.info({ job: job.id, log: p.logPath }, 'build log')
      Object.assign(build, { phase: p.phase, step: p.step, variant: p.variant, elapsedMs: p.elapsedMs, ...(p.logPath != null ? { logPath: p.logPath } : {}) })
    }
    let claim: Claim
    let smoke: SmokeOutcome | undefined
    try {
      // The built-in recipe only when it is the very one announced; otherwise the repository's own.
      // Handed over resolved: the engine does not look it up again.
      const builtin = recipes.get(job.recipe.name) ?? await builtinRecipe(job.recipe.name)
      const recipe = builtin != null && recipeDigest(builtin) === job.recipe.digest ? builtin : undefined
      // Given up (or stopping) before the engine was asked: nothing to wait for.
      signal.throwIfAborted()
      const result = await rebuilder.rebuild({
        repository: t.repository,
        ref: t.tag ?? t.commit,
        expectedCommit: t.commit,
        ...(recipe != null ? { recipe } : {}),
        variant: t.variant,
        platform: t.platform
      }, { signal, onProgress })
      claim = result.claim
      smoke = result.smoke
      // A repository's own recipe, read at checkout: which of the release's variants are bases.
      if (result.recipe != null) facts.learnRecipe(job.recipe.digest, result.recipe)
    } catch (err) {
      if (signal.aborted) {
        // Stopped, not failed: the attempt does not count.
        await saveJob(job, { state: 'queued', attempts: job.attempts - 1 })
        log.info({ job: job.id }, 'build aborted; requeued')
        return false
      }
      if (err instanceof RequirementsError || err instanceof TargetError || err instanceof RecipeError) {
        // Not buildable here as announced: retrying cannot help.
        await saveJob(job, { state: 'refused', lastError: err.message })
        log.warn({ job: job.id, error: err.message }, 'target refused')
        return false
      }
      await retryOrFail(job, (err as Error).message ?? String(err))
      return false
    }
    if (signal.aborted && claim.failure != null) {
      await saveJob(job, { state: 'queued', attempts: job.attempts - 1 })
      log.info({ job: job.id }, 'build aborted; requeued')
      return false
    }
    if (claim.failure?.class === 'infrastructure-error') {
      // The host's fault says nothing about the release: retried, and never signed.
      await retryOrFail(job, claim.failure.message)
      return false
    }
    const envelopeJson = JSON.stringify(signClaim(claim, components.identity))
    const { id } = await components.ingest.record(envelopeJson)
    job = await saveJob(job, { state: claim.failure == null ? 'done' : 'failed', claimId: id, lastError: claim.failure?.message })
    log.info({ job: job.id, id, outcome: claim.failure?.class ?? 'success', manifest: claim.result?.manifestDigest }, 'build finished; claim signed')
    components.onClaim?.(claim, id)
    try {
      await components.publishClaim(envelopeJson)
    } catch (err) {
      // Peers still get it through back-fill.
      log.warn({ err, job: job.id }, 'publishing the claim failed; it stays stored for back-fill')
    }
    if (smoke != null && claim.result != null) {
      // Beside the claim, never in it: a smoke test says the image runs, not that it is reproducible.
      const testResult: TestResult = { target: claim.target, manifestDigest: claim.result.manifestDigest, recipe: claim.recipe, environment: claim.environment, ...smoke }
      log.info({ job: job.id, result: smoke.result, exitCode: smoke.exitCode }, 'smoke test run')
      await components.onTestResult?.(testResult).catch((err: unknown) => { log.warn({ err, job: job.id }, 'keeping the smoke test result failed') })
    }
    return true
  }

  async function enqueue (message: StoredMessage): Promise<Job[]> {
    if (message.kind !== 'announcement') return []
    const a = message.announcement
    const caps = components.capabilities()
    if (components.rebuilder == null || caps == null) return []
    const ageMs = Date.now() - Date.parse(a.announcedAt)
    if (maxAgeMs > 0 && ageMs > maxAgeMs) {
      log.info({ repository: a.repository, tag: a.tag, announcedAt: a.announcedAt, maxAgeDays: Math.round(maxAgeMs / 86_400_000 * 10) / 10 }, 'release not queued: announced before the age limit (--max-release-age)')
      return []
    }
    const created: Job[] = []
    for (const target of announcementTargets(a)) {
      const id = targetKey(target)
      // One job per target, ever: a target announced again (or by a second tag) is not rebuilt.
      if (await store.getJob(id) != null) continue
      const verdict = await canBuildTarget(a.recipe.name, target, caps, recipes)
      const job: Job = {
        id,
        target,
        announcementId: message.id,
        recipe: a.recipe,
        state: verdict.ok ? 'queued' : 'refused',
        attempts: 0,
        ...(verdict.ok ? {} : { lastError: verdict.reason }),
        updatedAt: now()
      }
      await store.putJob(job)
      if (verdict.ok) created.push(job)
      log.info({ job: id, state: job.state, reason: verdict.reason }, verdict.ok ? 'build queued' : 'target not buildable here')
    }
    if (created.length > 0) schedulePump()
    return created
  }

  async function retryOrFail (job: Job, message: string): Promise<void> {
    if (job.attempts >= maxAttempts) {
      const broken = await saveJob(job, { state: 'broken', lastError: message })
      markBroken(broken)
      log.error({ job: job.id, attempts: job.attempts, error: message, hint: `fix the host, then: neko-rebuilder jobs retry '${job.id}'` },
        'host broken: every attempt failed on the engine, runtime, network set-up, disk or memory; this node stops building and signs nothing until a job is retried')
      return
    }
    const delay = Math.min(maxBackoffMs, backoffMs * 2 ** (job.attempts - 1))
    await saveJob(job, { state: 'queued', lastError: message, notBefore: Date.now() + delay })
    log.warn({ job: job.id, attempt: job.attempts, retryInMs: delay, error: message }, 'infrastructure error; retrying later')
  }

  function markBroken (job: Job): void {
    health = { state: 'broken', since: job.updatedAt, job: job.id, reason: job.lastError ?? 'infrastructure error' }
  }

  async function retry (id: string): Promise<Job> {
    const job = await store.getJob(id)
    if (job == null) throw new JobNotFoundError(id)
    if (job.state === 'running' || job.state === 'done' || active.has(id)) throw new JobNotRetryableError(id, active.has(id) ? 'running' : job.state)
    const queued = await saveJob(job, { state: 'queued', attempts: 0, notBefore: undefined, lastError: undefined })
    if (health.state === 'broken') log.info({ job: id, was: health.reason }, 'host marked fixed by a retry; building again')
    health = { state: 'ok' }
    log.info({ job: id, was: job.state }, 'job requeued by hand')
    schedulePump()
    return queued
  }

  return {
    async start () {
      if (started) return
      // A process that died mid-build left jobs running: they go back to the queue.
      for (const job of await store.listJobs('running')) {
        await saveJob(job, { state: 'queued', attempts: Math.max(0, job.attempts - 1) })
        log.info({ job: job.id }, 'interrupted build requeued')
      }
      // Broken stays broken across restarts: only `jobs retry` says the host is fixed.
      const broken = (await store.listJobs('broken')).sort((a, b) => a.updatedAt < b.updatedAt ? 1 : -1)[0]
      if (broken != null) {
        markBroken(broken)
        log.error({ job: broken.id, error: broken.lastError, hint: `fix the host, then: neko-rebuilder jobs retry '${broken.id}'` }, 'host broken since an earlier run; building nothing until a job is retried')
      }
      // Durations of this node's own recent builds, so a restarted node still orders by them.
      const done = (await store.listJobs('done')).sort((a, b) => a.updatedAt < b.updatedAt ? 1 : -1).slice(0, 256)
      for (const job of done) {
        const m = job.claimId != null ? await store.getMessage(job.claimId) : undefined
        if (m?.kind === 'claim') facts.learn(m.claim)
      }
      started = true
      stopping = false
      schedulePump()
    },

    async stop () {
      if (!started) return
      stopping = true
      if (timer != null) clearTimeout(timer)
      for (const { controller } of active.values()) controller.abort(new SchedulerStoppedError('the node is stopping'))
      await Promise.allSettled([...active.values()].map(a => a.done))
      await pumping
      started = false
      notifyIdle()
    },

    async enqueue (message) {
      const run = enqueueing.then(async () => await enqueue(message))
      enqueueing = run.catch(() => undefined)
      return await run
    },

    running: () => [...active.keys()],

    learn: claim => { facts.learn(claim) },

    health: () => health,

    async retry (id) {
      const run = enqueueing.then(async () => await retry(id))
      enqueueing = run.catch(() => undefined)
      return await run
    },

    reconsider: () => { schedulePump() },

    recipeOf: job => facts.recipe(job.recipe.digest) ?? recipes.get(job.recipe.name) ?? undefined,

    giveUp (id) {
      active.get(id)?.controller.abort(new SchedulerStoppedError(`gave up ${id}: other builders cover it`))
    },

    progress: () => [...active.values()].flatMap(a => a.build != null ? [{ ...a.build, elapsedMs: Date.now() - Date.parse(a.build.startedAt) }] : []),

    async idle () {
      if (!started || components.rebuilder == null) return
      await new Promise<void>(resolve => { idleWaiters.push(resolve); schedulePump() })
    }
  }
}

/** `1h02m03s`, `4m05s`, `6s`: elapsed time for a log line a person reads. */
export function formatDuration (ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const sec = total % 60
  const pad = (n: number): string => String(n).padStart(2, '0')
  if (h > 0) return `${h}h${pad(m)}m${pad(sec)}s`
  if (m > 0) return `${m}m${pad(sec)}s`
  return `${sec}s`
}
