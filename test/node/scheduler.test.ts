import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createRebuilder, loadRecipe, parseRecipe, recipeDigest, TargetError, type RebuildRequest } from '../../src/node/rebuilder/index.js'
import { createScheduler } from '../../src/node/scheduler/index.js'
import { createStore, type Store, type StoredMessage } from '../../src/node/store/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import type { TestResult } from '../../src/protocol/test-result.js'
import type { Announcement, Claim } from '../../src/protocol/types.js'
import { policyFor, waitFor } from './helpers.js'
import { createIngest, type Ingest } from '../../src/node/ingest/index.js'
import { controlRequest, createControlServer } from '../../src/node/daemon/control.js'

const CAPS = { platforms: [{ platform: 'linux/amd64', emulated: false }], nvidia: false }

describe('build scheduler', () => {
  let dir: string
  let store: Store
  const announcer = generateIdentity()
  const builder = generateIdentity()

  let ingest: Ingest

  /** The announcement as the ingest stores it and tells the node (its `stored` event). */
  async function storeAnnouncement (a: Announcement): Promise<StoredMessage> {
    const stored = new Promise<StoredMessage>(resolve => { ingest.addEventListener('stored', ({ detail }) => { resolve(detail) }, { once: true }) })
    await ingest.record(signAnnouncement(a, announcer))
    return await stored
  }

  const announcement: Announcement = {
    repository: 'https://example.invalid/project.git',
    tag: 'v1.0.0',
    commit: 'a'.repeat(40),
    recipe: { name: 'project', digest: `sha256:${'1'.repeat(64)}` },
    targets: [
      { variant: 'base', platform: 'linux/amd64' },
      { variant: 'base', platform: 'linux/riscv64' },
      { variant: 'nvidia', platform: 'linux/amd64' }
    ],
    announcedAt: '2026-01-01T00:00:00Z'
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-sched-'))
    store = await createStore({}, { path: join(dir, 'store') })
    ingest = createIngest({ store, policy: policyFor([builder], [announcer]) })
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('queues what this node can build, refuses the rest, retries infrastructure errors with backoff, then stops as a broken host and signs nothing', async () => {
    // A real rebuilder whose docker CLI does not exist: every attempt is an infrastructure error.
    const rebuilder = createRebuilder({}, { workDir: join(dir, 'work'), dockerCli: join(dir, 'no-such-docker') })
    const published: string[] = []
    const scheduler = createScheduler({
      store,
      ingest,
      rebuilder,
      identity: builder,
      capabilities: () => CAPS,
      publishClaim: async (json) => { published.push(json) }
    }, { maxAttempts: 3, backoffMs: 50 })
    await scheduler.start()
    try {
      const message = await storeAnnouncement(announcement)
      const queued = await scheduler.enqueue(message)
      // No GPU here (CAPS.nvidia false): the nvidia variant is built all the same.
      expect(queued.map(j => j.target.variant + ' ' + j.target.platform)).toEqual(['base linux/amd64', 'nvidia linux/amd64'])
      const jobs = await store.listJobs()
      expect(jobs.filter(j => j.state === 'refused').map(j => j.target.platform + ' ' + j.target.variant).sort()).toEqual(['linux/riscv64 base'])

      const id = queued[0]!.id
      await waitFor('the job to give up', async () => (await store.getJob(id))?.state === 'broken', 30_000)
      const job = (await store.getJob(id))!
      expect(job.attempts).toBe(3)
      expect(job.lastError).toContain('no-such-docker')
      // The host's fault is no vote: nothing signed, nothing published.
      expect(job.claimId).toBeUndefined()
      expect(published).toEqual([])
      expect((await store.stats()).claims).toBe(0)
      const health = scheduler.health()
      expect(health).toMatchObject({ state: 'broken', job: id })
      expect(health.state === 'broken' ? health.reason : '').toContain('no-such-docker')

      // Announced again (a relay, or a second tag for the commit): never rebuilt.
      expect(await scheduler.enqueue(await storeAnnouncement({ ...announcement, tag: 'v1.0.0-again' }))).toEqual([])
    } finally {
      await scheduler.stop()
    }
  }, 60_000)

  it('builds nothing more on a broken host, stays broken across a restart, and requeues by hand over the control socket', async () => {
    // Every attempt of a real rebuilder without its docker CLI is an infrastructure error.
    const rebuilder = createRebuilder({}, { workDir: join(dir, 'work'), dockerCli: join(dir, 'no-such-docker') })
    const components = { store, ingest, rebuilder, identity: builder, capabilities: () => CAPS, publishClaim: async () => {} }
    const only = [{ variant: 'base', platform: 'linux/amd64' }]
    let scheduler = createScheduler(components, { maxAttempts: 2, backoffMs: 20 })
    await scheduler.start()
    const [first] = await scheduler.enqueue(await storeAnnouncement({ ...announcement, targets: only }))
    await waitFor('the host to be broken', () => scheduler.health().state === 'broken', 30_000)
    const [second] = await scheduler.enqueue(await storeAnnouncement({ ...announcement, tag: 'v1.1.0', commit: 'c'.repeat(40), targets: only }))
    await new Promise(resolve => setTimeout(resolve, 300))
    // Queued, never started: a broken host would only fail again.
    expect(await store.getJob(second!.id)).toMatchObject({ state: 'queued', attempts: 0 })
    await scheduler.stop()

    scheduler = createScheduler(components, { maxAttempts: 2, backoffMs: 20 })
    await scheduler.start()
    const control = createControlServer({ scheduler }, { path: join(dir, 'control.sock') })
    await control.start()
    try {
      expect(scheduler.health()).toMatchObject({ state: 'broken', job: first!.id })
      await expect(controlRequest(join(dir, 'control.sock'), { op: 'retry', target: `${announcement.repository}@${'d'.repeat(40)}#base@linux/amd64` }))
        .rejects.toThrow(/JobNotFoundError: no job for/)
      const requeued = await controlRequest(join(dir, 'control.sock'), { op: 'retry', target: first!.id })
      expect(requeued).toMatchObject({ id: first!.id, state: 'queued', attempts: 0 })
      // The engine is still missing: the queue runs again until a job gives up, nothing signed.
      await waitFor('the host to be broken again', () => scheduler.health().state === 'broken', 30_000)
      const health = scheduler.health()
      const gaveUp = await store.getJob(health.state === 'broken' ? health.job : '')
      expect(gaveUp).toMatchObject({ state: 'broken', attempts: 2 })
      expect((await store.getJob(second!.id))?.attempts).toBeGreaterThan(0)
      expect((await store.stats()).claims).toBe(0)
    } finally {
      await control.stop()
      await scheduler.stop()
    }
    await expect(controlRequest(join(dir, 'control.sock'), { op: 'retry', target: first!.id })).rejects.toThrow(/no node runs with this data dir/)
  }, 60_000)

  it('hands the engine the built-in recipe it resolved, when it is the one announced, and none otherwise', async () => {
    const neko = await loadRecipe('neko')
    const asked: RebuildRequest[] = []
    const scheduler = createScheduler({
      store,
      ingest,
      // Records what it is asked, then refuses: the request is what this test is about.
      rebuilder: { rebuild: async (req) => { asked.push(req); throw new TargetError('recorded') } },
      identity: builder,
      capabilities: () => CAPS,
      publishClaim: async () => {}
    })
    await scheduler.start()
    try {
      const target = [{ variant: 'base', platform: 'linux/amd64' }]
      await scheduler.enqueue(await storeAnnouncement({ ...announcement, tag: 'v2.0.0', recipe: { name: 'neko', digest: recipeDigest(neko) }, targets: target }))
      await scheduler.enqueue(await storeAnnouncement({ ...announcement, tag: 'v2.0.1', commit: 'b'.repeat(40), recipe: { name: 'neko', digest: `sha256:${'2'.repeat(64)}` }, targets: target }))
      await waitFor('both jobs to reach the engine', () => asked.length === 2, 10_000)
      const byCommit = new Map(asked.map(r => [r.expectedCommit, r.recipe]))
      const resolved = byCommit.get('a'.repeat(40))
      expect(typeof resolved).toBe('object')
      expect(recipeDigest(resolved as typeof neko)).toBe(recipeDigest(neko))
      // Another digest under the same name: the repository's own recipe, read after checkout.
      expect(byCommit.get('b'.repeat(40))).toBeUndefined()
    } finally {
      await scheduler.stop()
    }
  })

  it('starts bases first, then the longest expected builds: learned from claims, emulated ones early', async () => {
    const neko = await loadRecipe('neko')
    const asked: string[] = []
    const caps = { platforms: [{ platform: 'linux/amd64', emulated: false }, { platform: 'linux/arm64', emulated: true }], nvidia: false }
    const scheduler = createScheduler({
      store,
      ingest,
      rebuilder: { rebuild: async (req) => { asked.push(`${req.variant ?? ''}@${req.platform}`); throw new TargetError('recorded') } },
      identity: builder,
      capabilities: () => caps,
      publishClaim: async () => {}
    })
    // Another node's claim: chromium on amd64 took 2 hours, longer than any guess.
    const took = (variant: string, ms: number): Claim => ({
      target: { repository: announcement.repository, commit: 'c'.repeat(40), variant, platform: 'linux/amd64' },
      sourceDateEpoch: 0,
      recipe: { name: 'neko', digest: recipeDigest(neko) },
      environment: { engine: { name: 'docker', version: '26' }, buildx: 'v0.13', buildkit: 'v0.13', kernel: '6', arch: 'amd64', emulated: false, tool: { name: 't', version: '1' } },
      startedOn: '2026-01-01T00:00:00.000Z',
      finishedOn: new Date(Date.parse('2026-01-01T00:00:00.000Z') + ms).toISOString(),
      result: { indexDigest: `sha256:${'1'.repeat(64)}`, manifestDigest: `sha256:${'2'.repeat(64)}`, configDigest: `sha256:${'3'.repeat(64)}`, diffIds: [] }
    })
    scheduler.learn(took('chromium', 2 * 3600_000))
    scheduler.learn(took('firefox', 60_000))
    await scheduler.start()
    try {
      const targets = [
        { variant: 'firefox', platform: 'linux/amd64' },
        { variant: 'firefox', platform: 'linux/arm64' },
        { variant: 'chromium', platform: 'linux/amd64' },
        { variant: 'base', platform: 'linux/amd64' },
        { variant: 'base', platform: 'linux/arm64' }
      ]
      await scheduler.enqueue(await storeAnnouncement({ ...announcement, tag: 'v3.0.0', recipe: { name: 'neko', digest: recipeDigest(neko) }, targets }))
      await waitFor('every job to reach the engine', () => asked.length === targets.length, 10_000)
      // Bases (the emulated one first), chromium (learned: 2 h), firefox arm64 (emulated: 6 x the 1 min learned natively), firefox amd64.
      expect(asked).toEqual(['base@linux/arm64', 'base@linux/amd64', 'chromium@linux/amd64', 'firefox@linux/arm64', 'firefox@linux/amd64'])
    } finally {
      await scheduler.stop()
    }
  })

  it('learns a repository recipe\'s bases from its first rebuild, and starts them next', async () => {
    const asked: string[] = []
    const recipe = parseRecipe({
      name: 'project',
      variants: [
        { name: 'base', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile' } },
        ...['app1', 'app2'].map(name => ({ name, platforms: ['linux/amd64'], build: { context: name, dockerfile: `${name}/Dockerfile` }, from: { BASE_IMAGE: 'base' } }))
      ]
    })
    const scheduler = createScheduler({
      store,
      ingest,
      rebuilder: {
        rebuild: async (req) => {
          asked.push(req.variant ?? '')
          return {
            recipe,
            claim: {
              target: { repository: req.repository, commit: req.expectedCommit ?? '', variant: req.variant ?? '', platform: req.platform },
              sourceDateEpoch: 0,
              recipe: announcement.recipe,
              environment: { engine: { name: 'docker', version: '26' }, buildx: 'v0.13', buildkit: 'v0.13', kernel: '6', arch: 'amd64', emulated: false, tool: { name: 't', version: '1' } },
              startedOn: '2026-01-01T00:00:00.000Z',
              finishedOn: '2026-01-01T00:01:00.000Z',
              failure: { class: 'build-failed', message: 'recorded' }
            }
          }
        }
      },
      identity: builder,
      capabilities: () => CAPS,
      publishClaim: async () => {}
    })
    await scheduler.start()
    try {
      await scheduler.enqueue(await storeAnnouncement({ ...announcement, targets: ['app1', 'app2', 'base'].map(variant => ({ variant, platform: 'linux/amd64' })) }))
      await waitFor('every job to reach the engine', () => asked.length === 3, 10_000)
      // Nothing known before the first checkout: app1 first (queued first); then the base it named.
      expect(asked).toEqual(['app1', 'base', 'app2'])
    } finally {
      await scheduler.stop()
    }
  })

  it('hands over the outcome of the smoke test the engine ran in the image it rebuilt, after the claim; none without one', async () => {
    const published: TestResult[] = []
    const image = { indexDigest: `sha256:${'1'.repeat(64)}`, manifestDigest: `sha256:${'2'.repeat(64)}`, configDigest: `sha256:${'3'.repeat(64)}`, diffIds: [] }
    const scheduler = createScheduler({
      store,
      ingest,
      rebuilder: {
        rebuild: async (req) => ({
          claim: {
            target: { repository: req.repository, commit: req.expectedCommit ?? '', variant: req.variant ?? '', platform: req.platform, tag: req.ref },
            sourceDateEpoch: 0,
            recipe: announcement.recipe,
            environment: { engine: { name: 'docker', version: '26' }, buildx: 'v0.13', buildkit: 'v0.13', kernel: '6', arch: 'amd64', emulated: false, tool: { name: 't', version: '1' } },
            startedOn: '2026-01-01T00:00:00.000Z',
            finishedOn: '2026-01-01T00:01:00.000Z',
            result: image
          },
          ...(req.variant === 'base' ? { smoke: { result: 'FAILED' as const, command: ['/bin/false'], gpu: false, exitCode: 1, startedOn: '2026-01-01T00:01:00.000Z', finishedOn: '2026-01-01T00:01:01.000Z' } } : {})
        })
      },
      identity: builder,
      capabilities: () => CAPS,
      publishClaim: async () => {},
      onTestResult: async (testResult) => { published.push(testResult) }
    })
    await scheduler.start()
    try {
      await scheduler.enqueue(await storeAnnouncement({ ...announcement, targets: [{ variant: 'base', platform: 'linux/amd64' }, { variant: 'nvidia', platform: 'linux/amd64' }] }))
      await waitFor('both builds to finish and the test result to go out', async () => (await store.listJobs('done')).length === 2 && published.length > 0, 10_000)
      expect(published).toHaveLength(1)
      expect(published[0]).toMatchObject({ manifestDigest: image.manifestDigest, result: 'FAILED', exitCode: 1, command: ['/bin/false'], target: { variant: 'base', commit: announcement.commit } })
      // The claim stands whatever the test said: a test result is not a vote.
      expect((await store.stats()).claims).toBe(2)
    } finally {
      await scheduler.stop()
    }
  })

  it('puts a build that was running when the process died back in the queue', async () => {
    const message = await storeAnnouncement(announcement)
    const target = { repository: announcement.repository, commit: announcement.commit, variant: 'base', platform: 'linux/amd64', tag: 'v1.0.0' }
    const id = `${target.repository}@${target.commit}#base@linux/amd64`
    await store.putJob({ id, target, announcementId: message.id, recipe: announcement.recipe, state: 'running', attempts: 1, updatedAt: new Date().toISOString() })
    // An observer (no rebuilder) starts nothing, so the requeued job stays visible.
    const scheduler = createScheduler({ store, ingest, identity: builder, capabilities: () => CAPS, publishClaim: async () => {} })
    await scheduler.start()
    await scheduler.stop()
    const job = await store.getJob(id)
    expect(job?.state).toBe('queued')
    expect(job?.attempts).toBe(0)
  })
})
