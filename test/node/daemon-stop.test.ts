import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { policyFor, startDaemon, waitFor } from './helpers.js'

const available = engineAvailable('daemon stop during a build') && busyboxAvailable('amd64')

describe.skipIf(!available)('stopping a node during a build', () => {
  let root: string
  let repo: FixtureRepo

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-stop-'))
    // A build that would take minutes: only an abort ends it quickly.
    repo = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile([`RUN sleep 300 && echo ${Date.now()} > /stamp`]) }, busybox: 'amd64', tag: 'v1', lightweight: true }, root)
  })
  afterAll(async () => {
    await repo?.cleanup()
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('aborts the running build, requeues its job and closes the store', async () => {
    const node = generateIdentity()
    const announcer = generateIdentity()
    const dir = join(root, 'node')
    const daemon = await startDaemon({ dir, identity: node, policy: policyFor([node], [announcer]), build: true })
    let stopped = false
    try {
      const a = await prepareAnnouncement({ repository: repo.dir, tag: 'v1', platforms: ['linux/amd64'] })
      await daemon.announce(signAnnouncement(a, announcer))
      await waitFor('the build to start', async () => (await daemon.store.listJobs('running')).length === 1, 30_000)
      // Let buildx get into the RUN step.
      await new Promise(resolve => setTimeout(resolve, 3000))
      await daemon.stop()
      stopped = true
    } finally {
      if (!stopped) await daemon.stop()
    }
    // The store was closed: it opens again, and holds the job, requeued, with no claim.
    const store = await createStore({}, { path: join(dir, 'store') })
    try {
      const jobs = await store.listJobs()
      expect(jobs).toHaveLength(1)
      expect(jobs[0]!.state).toBe('queued')
      expect(jobs[0]!.attempts).toBe(0)
      expect((await store.stats()).claims).toBe(0)
    } finally {
      await store.close()
    }
  }, 90_000)
})
