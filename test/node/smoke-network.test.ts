import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import type { Daemon } from '../../src/node/daemon/index.js'
import { listTestResults } from '../../src/node/test-results/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { engineAvailable } from '../helpers/engine.js'
import { createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { policyFor, startDaemon, verdictsOf, waitFor } from './helpers.js'

const available = engineAvailable('node network: smoke tests')

describe.skipIf(!available)('smoke tests across a network of nodes with the real engine', () => {
  let root: string
  let repo: FixtureRepo
  const daemons: Daemon[] = []
  const ids = [generateIdentity(), generateIdentity()]
  const announcer = generateIdentity()
  // One engine for both: the quorum counts it once, so one agreeing engine decides (k = 1), and
  // each node builds every target (`--build-all`): both sign test results of both.
  const policy = policyFor(ids, [announcer], 1)

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-smoke-net-'))
    const recipe = {
      name: 'smoky',
      variants: [
        { name: 'runs', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile' }, smoke: { command: ['/bin/busybox', 'cat', '/ready'] } },
        { name: 'broken', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile' }, smoke: { command: ['/bin/busybox', 'cat', '/missing'] } }
      ]
    }
    repo = await createFixtureRepo({ files: { 'neko-rebuilder.json': JSON.stringify(recipe), Dockerfile: scratchDockerfile(['RUN echo ready > /ready']) }, busybox: 'amd64', tag: 'v1.0.0' }, root)
    daemons.push(await startDaemon({ dir: join(root, 'n0'), identity: ids[0]!, policy, build: true, buildAll: true }))
    daemons.push(await startDaemon({ dir: join(root, 'n1'), identity: ids[1]!, policy, build: true, buildAll: true, bootstrap: [daemons[0]!.multiaddrs()[0]!] }))
  })
  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    await rm(root, { recursive: true, force: true })
  })

  it('each node signs its test results once the image is agreed, and every node stores every node\'s; the verdicts ignore them', async () => {
    const announcement = await prepareAnnouncement({ repository: repo.dir, tag: 'v1.0.0' })
    await daemons[0]!.announce(signAnnouncement(announcement, announcer))
    await waitFor('both nodes\' test results of both targets on both nodes', async () => {
      for (const d of daemons) if ((await listTestResults(d.store, { repository: repo.dir })).length < 4) return false
      return true
    }, 240_000)
    for (const d of daemons) {
      const verdicts = await verdictsOf(d, repo.dir, announcement.commit)
      expect(verdicts.map(v => v.status)).toEqual(['reproducible', 'reproducible'])
      const results = await listTestResults(d.store, { repository: repo.dir })
      for (const r of results) {
        const verdict = verdicts.find(v => v.key.endsWith(`#${r.testResult.target.variant}@linux/amd64`))
        // Signed for the digest the quorum agreed on.
        expect(r.testResult.manifestDigest).toBe(verdict?.consensusDigest)
        expect(r.testResult.result).toBe(r.testResult.target.variant === 'runs' ? 'PASSED' : 'FAILED')
      }
      expect(new Set(results.map(r => r.keyId))).toEqual(new Set(ids.map(i => i.keyId)))
    }
  }, 300_000)
})
