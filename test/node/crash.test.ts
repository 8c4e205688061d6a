import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import type { Daemon } from '../../src/node/daemon/index.js'
import { createStore } from '../../src/node/store/index.js'
import { listReports } from '../../src/node/divergence/index.js'
import { exportPrivatePem, generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { verifyDivergenceReport } from '../../src/protocol/divergence-report.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile } from '../helpers/fixtures.js'
import { policyFor, startDaemon, waitFor } from './helpers.js'

const available = engineAvailable('node killed at a follower gap') && busyboxAvailable()
if (!busyboxAvailable()) process.stderr.write('[skip] node killed at a follower gap: no busybox fixture; run scripts/setup-host.sh\n')

/** Runs test/node/crash-child.ts as its own process (no tsx wrapper, so SIGKILL hits the node itself); resolves with how it ended. */
async function runChild (mode: string, dir: string, config: object): Promise<{ signal: string | null, stdout: string }> {
  const configPath = join(dir, `${mode}-config.json`)
  await writeFile(configPath, JSON.stringify(config))
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), mode, join(dir, mode), configPath], { stdio: ['ignore', 'pipe', 'inherit'], cwd: join(import.meta.dirname, '../..') })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  return await new Promise(resolve => child.on('close', (_code, signal) => { resolve({ signal, stdout }) }))
}

describe.skipIf(!available)('a node killed with SIGKILL between storing a message and acting on it', () => {
  let root: string
  let announcer: SigningIdentity
  const daemons: Daemon[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-follow-crash-'))
    announcer = generateIdentity()
  })

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('queues and builds an announcement stored just before the kill, after the restart', async () => {
    const repo = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['COPY stable.txt /opt/stable.txt']), 'stable.txt': 'the same in every build\n' }, busybox: 'amd64', tag: 'v0.0.1' }, root)
    const builder = generateIdentity()
    const policy = policyFor([builder], [announcer])
    const announcement = await prepareAnnouncement({ repository: repo.dir, tag: 'v0.0.1', platforms: ['linux/amd64'] })
    const envelope = JSON.stringify(signAnnouncement(announcement, announcer))

    const { signal } = await runChild('announcement', root, { builders: [exportPrivatePem(builder)], announcer: exportPrivatePem(announcer), self: 0, envelope })
    expect(signal).toBe('SIGKILL')
    const dir = join(root, 'announcement')
    // At the gap: the announcement is stored, nothing is queued.
    const store = await createStore({}, { path: join(dir, 'store') })
    const stored = await store.announcements({ repository: repo.dir })
    expect(stored).toHaveLength(1)
    expect(await store.listJobs()).toEqual([])
    await store.close()

    const node = await startDaemon({ dir, identity: builder, policy, build: true })
    daemons.push(node)
    await waitFor('the announced target queued', async () => (await node.store.listJobs()).length === 1, 30_000)
    expect((await node.store.listJobs())[0]!.announcementId).toBe(stored[0]!.id)
    await waitFor('its claim', async () => (await node.store.claimsForCommit(repo.dir, announcement.commit)).length === 1, 150_000)
    expect(node.stats().followers.scheduler).toBe(0)
  }, 240_000)

  it('signs the divergence report pending at the kill, after the restart', async () => {
    // Every build differs: a random machine id.
    const dockerfile = scratchDockerfile(['RUN mkdir -p /etc && head -c 16 /dev/urandom > /etc/machine-id'], { applets: ['sh', 'mkdir', 'head'] })
    const repo = await createFixtureRepo({ files: { Dockerfile: dockerfile }, busybox: 'amd64', tag: 'v0.0.2' }, root)
    const ids = [generateIdentity(), generateIdentity()]
    const policy = policyFor(ids, [announcer])
    const announcement = await prepareAnnouncement({ repository: repo.dir, tag: 'v0.0.2', platforms: ['linux/amd64'] })
    const other = await startDaemon({ dir: join(root, 'other'), identity: ids[1]!, policy, build: true, manifests: true })
    daemons.push(other)
    await other.announce(signAnnouncement(announcement, announcer))
    await waitFor('the other builder\'s claim', async () => (await other.store.claimsForCommit(repo.dir, announcement.commit)).length === 1, 150_000)

    const bootstrap = [other.multiaddrs()[0]!]
    const { signal, stdout } = await runChild('divergence', root, { builders: ids.map(i => exportPrivatePem(i)), announcer: exportPrivatePem(announcer), self: 0, bootstrap })
    expect(signal).toBe('SIGKILL')
    expect(stdout).toMatch(/^pending \d+/m)
    const dir = join(root, 'divergence')
    // At the gap: both claims stored and read by the divergence service (its cursor is past them), the
    // comparison pending, and no report of this node's.
    const store = await createStore({}, { path: join(dir, 'store') })
    const claims = await store.claimsForCommit(repo.dir, announcement.commit)
    const own = claims.find(c => c.keyId === ids[0]!.keyId)!
    const theirs = claims.find(c => c.keyId === ids[1]!.keyId)!
    expect(own.claim.result!.manifestDigest).not.toBe(theirs.claim.result!.manifestDigest)
    expect(await store.getState<number>('follower-cursor:divergence')).toBeGreaterThanOrEqual(Math.max(own.cursor, theirs.cursor))
    expect((await listReports(store)).filter(r => r.keyId === ids[0]!.keyId)).toEqual([])
    await store.close()

    const node = await startDaemon({ dir, identity: ids[0]!, policy, build: true, manifests: true, bootstrap })
    daemons.push(node)
    await waitFor('this node\'s report', async () => (await listReports(node.store)).some(r => r.keyId === ids[0]!.keyId), 60_000)
    const stored = (await listReports(node.store)).find(r => r.keyId === ids[0]!.keyId)!
    const { report } = verifyDivergenceReport(stored.envelopeJson, { keys: policy.builderKeys })
    expect(report.a.claimId).toBe(own.id)
    expect(report.b.claimId).toBe(theirs.id)
    expect(report.causes.map(c => c.id)).toContain('machine-id')
  }, 360_000)
})
