import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jobsView } from '../../src/node/scheduler/jobs-view.js'
import { formatJobs } from '../../src/cli/jobs-format.js'
import { createIngest } from '../../src/node/ingest/index.js'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { createScheduler } from '../../src/node/scheduler/index.js'
import { createStore, type Store, type StoredMessage } from '../../src/node/store/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { separateEngineAvailable, startSeparateEngine, type SeparateEngine } from '../helpers/separate-engine.js'
import { policyFor, waitFor } from '../node/helpers.js'

const available = engineAvailable('build: infrastructure errors') && separateEngineAvailable('build: infrastructure errors') && busyboxAvailable()
const ENGINE_TEST_TIMEOUT = 240_000

describe.skipIf(!available)('a broken engine host: infrastructure errors through a real engine', () => {
  let engine: SeparateEngine
  let work: string
  let repo: FixtureRepo
  let store: Store
  const dockerHost = process.env.DOCKER_HOST
  const announcer = generateIdentity()
  const builder = generateIdentity()
  let built: string | undefined

  beforeAll(async () => {
    engine = await startSeparateEngine()
    // The rebuilder's docker CLI and its engine client both follow DOCKER_HOST.
    process.env.DOCKER_HOST = engine.host
    work = await mkdtemp(join(tmpdir(), 'neko-infra-'))
    repo = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['RUN echo built > /built']) }, busybox: 'amd64', tag: 'v1.0.0' }, work)
    store = await createStore({}, { path: join(work, 'store') })
  })
  afterAll(async () => {
    if (dockerHost === undefined) delete process.env.DOCKER_HOST
    else process.env.DOCKER_HOST = dockerHost
    await store?.close()
    await engine?.stop()
    if (work != null) await rm(work, { recursive: true, force: true })
  })

  it('a RUN step on an engine whose bridge is gone is an infrastructure error, not a failed build', async () => {
    const rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    const ok = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1.0.0', platform: 'linux/amd64' })
    expect(ok.claim.failure, `${JSON.stringify(ok.claim.failure)}\n${await engine.log()}`).toBeUndefined()
    built = ok.claim.result?.manifestDigest

    await engine.removeBridge()
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1.0.0', platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('infrastructure-error')
    expect(out.claim.failure?.message).toContain('could not set up a build step\'s network')
    expect(out.claim.failure?.message).toContain(`to bridge ${engine.bridge} failed: Device does not exist`)
  }, ENGINE_TEST_TIMEOUT)

  it('the node retries, then says its host is broken and signs nothing; fixed and retried by hand, it signs the rebuild', async () => {
    expect(built).toBeDefined()
    const ingest = createIngest({ store, policy: policyFor([builder], [announcer]) })
    const stored = new Promise<StoredMessage>(resolve => { ingest.addEventListener('stored', ({ detail }) => { resolve(detail) }, { once: true }) })
    await ingest.record(signAnnouncement({
      repository: repo.dir,
      tag: 'v1.0.0',
      commit: repo.commits[0]!.commit,
      recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` },
      targets: [{ variant: 'default', platform: 'linux/amd64' }],
      announcedAt: new Date().toISOString()
    }, announcer))
    const published: string[] = []
    const scheduler = createScheduler({
      store,
      ingest,
      rebuilder: createRebuilder({}, { workDir: join(work, 'ws') }),
      identity: builder,
      capabilities: () => ({ platforms: [{ platform: 'linux/amd64', emulated: false }], nvidia: false }),
      publishClaim: async (json) => { published.push(json) }
    }, { maxAttempts: 2, backoffMs: 200 })
    await scheduler.start()
    try {
      const [job] = await scheduler.enqueue(await stored)
      await waitFor('the host to be reported broken', () => scheduler.health().state === 'broken', ENGINE_TEST_TIMEOUT / 2)
      expect(await store.getJob(job!.id)).toMatchObject({ state: 'broken', attempts: 2 })
      expect(published).toEqual([])
      expect((await store.stats()).claims).toBe(0)
      const shown = formatJobs(await jobsView({ store, scheduler }))
      expect(shown).toContain('HOST BROKEN since')
      expect(shown).toContain('Device does not exist')
      expect(shown).toContain(`neko-rebuilder jobs retry '${job!.id}'`)

      await engine.restoreBridge()
      await scheduler.retry(job!.id)
      await waitFor('the retried rebuild', async () => (await store.getJob(job!.id))?.state === 'done', ENGINE_TEST_TIMEOUT / 2)
      const claimId = (await store.getJob(job!.id))?.claimId
      const claim = await store.getMessage(claimId ?? '')
      expect(claim?.kind === 'claim' ? claim.claim.result?.manifestDigest : undefined).toBe(built)
      expect(published).toHaveLength(1)
      expect(scheduler.health().state).toBe('ok')
    } finally {
      await scheduler.stop()
    }
  }, ENGINE_TEST_TIMEOUT)
})
