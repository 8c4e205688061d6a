import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import { createFixtureProject, type FixtureProject } from '../../src/node/devnet/fixture-project.js'
import { publishOnce } from '../../src/cli/publish-once.js'
import type { Daemon } from '../../src/node/daemon/index.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import type { Announcement, Claim, SuccessClaim } from '../../src/protocol/types.js'
import { engineAvailable } from '../helpers/engine.js'
import { policyFor, startDaemon, startRawPeer, verdictsOf, waitFor } from './helpers.js'

const available = engineAvailable('node network')

function tamper (envelopeJson: string): string {
  const env = JSON.parse(envelopeJson) as { payload: string }
  const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Record<string, unknown>
  statement.forged = true
  return JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(statement)).toString('base64') })
}

describe.skipIf(!available)('node network over loopback with the real engine', () => {
  let root: string
  let project: FixtureProject
  let ids: SigningIdentity[]
  let announcer: SigningIdentity
  const daemons: Daemon[] = []
  let announcement: Announcement
  let stoppedDir: string

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-net-'))
    project = await createFixtureProject({ dir: join(root, 'project') })
    ids = Array.from({ length: 5 }, () => generateIdentity())
    announcer = generateIdentity()
    // Two builders (nodes 0 and 1), both trusted: k = 2 of 2 operators. Nodes 2 to 4 observe.
    // Both builders use this machine's one engine, which the quorum counts as one witness: k = 1.
    const policy = policyFor([ids[0]!, ids[1]!], [announcer], 1)
    const first = await startDaemon({ dir: join(root, 'n0'), identity: ids[0]!, policy, build: true })
    daemons.push(first)
    const boot = [`${first.multiaddrs()[0]!}`]
    for (let i = 1; i < 5; i++) {
      daemons.push(await startDaemon({ dir: join(root, `n${i}`), identity: ids[i]!, policy, build: i === 1, bootstrap: boot }))
    }
    stoppedDir = join(root, 'n4')
    await waitFor('a connected network', () => daemons[0]!.p2p.connectedPeers().length >= 4 && daemons.every(d => (d.p2p.stats().mesh[TOPICS.claims] ?? 0) >= 1), 30_000)
  })

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('builds what is announced; every node stores both claims and reaches the same verdict; a stopped node catches up', async () => {
    // Node 4 misses the whole exchange.
    await daemons[4]!.stop()
    announcement = await prepareAnnouncement({ repository: project.repository, tag: project.tag, platforms: ['linux/amd64'] })
    expect(announcement.commit).toBe(project.commit)
    expect(announcement.targets).toEqual([{ variant: 'default', platform: 'linux/amd64' }])
    const env = signAnnouncement(announcement, announcer)
    // Through an observer, by a short-lived node: gossip carries it to the builders.
    const sent = await publishOnce(Buffer.from(JSON.stringify(env)), { to: [daemons[2]!.multiaddrs()[0]!] })
    expect(sent.recipients).toBeGreaterThan(0)

    const live = daemons.slice(0, 4)
    await waitFor('two claims on every live node', async () => {
      for (const d of live) if ((await d.store.claimsForCommit(project.repository, project.commit)).length < 2) return false
      return true
    }, 180_000)
    for (const d of live) expect((await d.store.announcements({ repository: project.repository })).length).toBe(1)
    // A done job is never rebuilt.
    expect((await daemons[0]!.store.getJob(`${project.repository}@${project.commit}#default@linux/amd64`))?.state).toBe('done')

    const verdicts = await Promise.all(live.map(async d => await verdictsOf(d, project.repository, project.commit)))
    for (const v of verdicts) {
      expect(v).toHaveLength(1)
      expect(v[0]!.status).toBe('reproducible')
      expect(v[0]!.agreeing).toHaveLength(1)
      expect([...v[0]!.agreeing, ...v[0]!.sameEngine].map(a => a.keyId).sort()).toEqual([ids[0]!.keyId, ids[1]!.keyId].sort())
      expect(v[0]!.consensusDigest).toBe(verdicts[0]![0]!.consensusDigest)
    }
    expect(verdicts[0]![0]!.consensusDigest).toMatch(/^sha256:[0-9a-f]{64}$/)

    // Restart node 4 from its data dir: back-fill brings the announcement and both claims.
    const policy = daemons[0]!.policy()
    daemons[4] = await startDaemon({ dir: stoppedDir, identity: ids[4]!, policy, bootstrap: [daemons[0]!.multiaddrs()[0]!] })
    await waitFor('back-fill on the restarted node', async () =>
      (await daemons[4]!.store.claimsForCommit(project.repository, project.commit)).length >= 2, 30_000)
    expect((await daemons[4]!.store.announcements()).length).toBe(1)
    const v4 = await verdictsOf(daemons[4]!, project.repository, project.commit)
    expect(v4[0]!.status).toBe('reproducible')
    expect(v4[0]!.consensusDigest).toBe(verdicts[0]![0]!.consensusDigest)
    // Capabilities went round: node 2 knows both builders can build.
    await waitFor('capabilities of the builders', () => daemons[2]!.builders().filter(b => b.trusted && b.capabilities.builds).length >= 2, 30_000)
  }, 240_000)

  it('rejects forged, untrusted-announcer, oversized and malformed gossip; stores an untrusted claim without counting it', async () => {
    const d0 = daemons[0]!
    const trusted = (await d0.store.claimsForCommit(project.repository, project.commit))[0]!
    const stranger = generateIdentity()
    const strangerClaim: Claim = { ...trusted.claim as SuccessClaim, result: { ...trusted.claim.result!, manifestDigest: `sha256:${'e'.repeat(64)}` } }
    const untrustedEnv = JSON.stringify(signClaim(strangerClaim, stranger))
    const untrustedId = decodeMessage(untrustedEnv, { allowEmbeddedKeys: true }).id
    const bad = {
      forged: tamper(trusted.envelopeJson),
      announcement: JSON.stringify(signAnnouncement({ ...announcement, tag: 'v9.9.9' }, stranger)),
      malformed: '{"payload": 1',
      oversized: JSON.stringify({ payload: 'A'.repeat(70_000), payloadType: 'x', signatures: [] })
    }
    const before = (await d0.store.stats()).messages
    const rejectedBefore = d0.stats().gossip.rejected

    const rogue = await startRawPeer()
    try {
      await rogue.dial(d0.multiaddrs()[0]!)
      await waitFor('rogue sees subscribers', () => (rogue.stats().topics[TOPICS.claims] ?? 0) >= 1 && (rogue.stats().topics[TOPICS.announcements] ?? 0) >= 1)
      await rogue.publish(TOPICS.claims, Buffer.from(untrustedEnv))
      await waitFor('the untrusted claim stored', async () => await d0.store.hasMessage(untrustedId))
      await rogue.publish(TOPICS.claims, Buffer.from(bad.forged))
      await rogue.publish(TOPICS.announcements, Buffer.from(bad.announcement))
      await rogue.publish(TOPICS.claims, Buffer.from(bad.malformed))
      await rogue.publish(TOPICS.claims, Buffer.from(bad.oversized))
      await waitFor('rejections', () => d0.stats().gossip.rejected > rejectedBefore)
      await new Promise(resolve => setTimeout(resolve, 1000))
    } finally {
      await rogue.stop()
    }
    expect((await d0.store.stats()).messages).toBe(before + 1)
    expect(await d0.store.announcements({ tag: 'v9.9.9' })).toHaveLength(0)
    // The untrusted claim reached the others too; the verdict everywhere ignores it.
    await waitFor('untrusted claim relayed', async () => await daemons[3]!.store.hasMessage(untrustedId), 10_000)
    for (const d of daemons) {
      const [v] = await verdictsOf(d, project.repository, project.commit)
      expect(v!.status).toBe('reproducible')
      expect(v!.agreeing).toHaveLength(1)
      expect(v!.sameEngine).toHaveLength(1)
      expect(v!.dissenting).toHaveLength(0)
      expect(v!.untrusted.map(u => u.keyId)).toContain(stranger.keyId)
    }
  }, 60_000)

  it('rejects the same over back-fill and stores only what verifies', async () => {
    const d1 = daemons[1]!
    const trusted = (await d1.store.claimsForCommit(project.repository, project.commit))[0]!
    const stranger = generateIdentity()
    const strangerClaim: Claim = { ...trusted.claim as SuccessClaim, result: { ...trusted.claim.result!, manifestDigest: `sha256:${'f'.repeat(64)}` } }
    const untrustedEnv = JSON.stringify(signClaim(strangerClaim, stranger))
    const untrustedId = decodeMessage(untrustedEnv, { allowEmbeddedKeys: true }).id
    // Signed by a key this policy does not list as an announcer: ignored, not counted as forged.
    const strangerAnnouncement = JSON.stringify(signAnnouncement({ ...announcement, tag: 'v8.8.8' }, stranger))
    const items = [tamper(trusted.envelopeJson), strangerAnnouncement, '{"nope', 'null', untrustedEnv].map(s => Buffer.from(s))
    const before = (await d1.store.stats()).messages
    const rejectedBefore = d1.stats().backfill.rejected

    const rogue = await startRawPeer(items)
    const oversized = await startRawPeer([Buffer.from(JSON.stringify({ payload: 'A'.repeat(100_000) }))])
    try {
      await d1.p2p.dial(rogue.multiaddrs()[0]!)
      await waitFor('back-fill from the rogue', async () => d1.stats().backfill.rejected >= rejectedBefore + 3 && await d1.store.hasMessage(untrustedId))
      // The transport may refuse the frame (a failed page) or hand it over to be refused by the validator.
      const { failures, rejected } = d1.stats().backfill
      await d1.p2p.dial(oversized.multiaddrs()[0]!)
      await waitFor('oversized item refused', () => d1.stats().backfill.failures > failures || d1.stats().backfill.rejected > rejected, 15_000)
    } finally {
      await rogue.stop()
      await oversized.stop()
    }
    expect((await d1.store.stats()).messages).toBe(before + 1)
    expect(await d1.store.announcements({ tag: 'v8.8.8' })).toHaveLength(0)
    const [v] = await verdictsOf(d1, project.repository, project.commit)
    expect(v!.status).toBe('reproducible')
    expect(v!.agreeing).toHaveLength(1)
    expect(v!.sameEngine).toHaveLength(1)
  }, 60_000)
})
