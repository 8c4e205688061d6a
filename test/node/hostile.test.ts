import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { createP2PNode, TOPICS, type BackfillSource, type P2PNode } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signClaim } from '../../src/protocol/messages.js'
import { claim, imageResult, target } from '../http/fixtures.js'
import { LOOPBACK, policyFor, waitFor } from './helpers.js'

// Real daemons (level store, libp2p on loopback) against peers that misbehave under load.

const COMMIT = 'e'.repeat(40)

function signed (i: number, by: SigningIdentity, commit = COMMIT): Uint8Array {
  return Buffer.from(JSON.stringify(signClaim(claim(target(commit, `v${i}`, 'linux/amd64'), { result: imageResult(`r${i}`) }), by)))
}

function forge (data: Uint8Array): Uint8Array {
  const env = JSON.parse(Buffer.from(data).toString()) as { payload: string }
  const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Record<string, unknown>
  statement.forged = true
  return Buffer.from(JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(statement)).toString('base64') }))
}

async function startPeer (backfillSource?: BackfillSource, privateKey = generateIdentity().privateKey): Promise<P2PNode> {
  const node = await createP2PNode({
    privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    backfillSource: backfillSource ?? (async ({ cursor }) => ({ items: [], next: cursor }))
  }, { listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100 } })
  await node.start()
  return node
}

describe('a node under hostile peers', () => {
  let root: string
  const builder = generateIdentity()
  const announcer = generateIdentity()
  const policy = policyFor([builder], [announcer])
  const daemons: Daemon[] = []
  const peers: P2PNode[] = []

  async function startVictim (name: string, init: { trustedRate?: { perMinute: number, burst: number } } = {}): Promise<Daemon> {
    const store = await createStore({}, { path: join(root, name) })
    const d = await createDaemon({ identity: generateIdentity(), store, policy }, {
      listen: [LOOPBACK], bootstrap: [], mdns: false, gossip: { heartbeatIntervalMs: 100 }, ...init
    })
    await d.start()
    daemons.push(d)
    return d
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-hostile-'))
  })

  afterAll(async () => {
    await Promise.all(peers.map(async p => { await p.stop().catch(() => {}) }))
    await Promise.all(daemons.map(async d => { await d.stop().catch(() => {}) }))
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('a back-fill server that answers with forged items loses its score, its connection, and is not asked again', async () => {
    const victim = await startVictim('forged')
    const good = signed(1, builder)
    let requests = 0
    const rogue = await startPeer(async ({ cursor }) => {
      requests++
      return cursor === 0 ? { items: [good, forge(signed(2, builder)), forge(signed(3, builder)), forge(signed(4, builder))], next: 4 } : { items: [], next: cursor }
    })
    peers.push(rogue)
    await victim.p2p.dial(rogue.multiaddrs()[0]!)
    await waitFor('the catch-up to judge the page', () => victim.stats().backfill.penalised >= 1, 15_000)
    expect(victim.stats().backfill.rejected).toBe(3)
    // What verified was kept; the forgeries were not.
    expect((await victim.store.claimsForCommit(target(COMMIT, 'v1', 'linux/amd64').repository, COMMIT)).map(m => m.claim.target.variant)).toEqual(['v1'])
    expect(victim.p2p.penalised(rogue.peerId)).toBe(true)
    // Three invalid items put it below the graylist threshold, as three invalid gossip messages would.
    await waitFor('the rogue disconnected', () => !victim.p2p.connectedPeers().includes(rogue.peerId), 10_000)
    // ...and not redialled, although the victim had dialled it on purpose.
    await new Promise(resolve => setTimeout(resolve, 1000))
    expect(victim.p2p.connectedPeers()).not.toContain(rogue.peerId)
    await waitFor('a negative gossip score', () => victim.p2p.score(rogue.peerId) < -80, 5_000).catch(() => {})
    const asked = requests
    // An explicit catch-up does not ask it either while the penalty lasts.
    await rogue.dial(victim.multiaddrs()[0]!).catch(() => {})
    expect(await victim.syncFrom(rogue.peerId)).toEqual({ stored: 0, rejected: 0 })
    expect(requests).toBe(asked)
  }, 60_000)

  it('a back-fill server with endless pages gets at most maxPages pages that bring nothing new per catch-up, and one catch-up per interval however often it reconnects', async () => {
    const victim = await startVictim('endless')
    const known = signed(10, builder)
    let requests = 0
    // Always one item (the same one: a duplicate after the first page) and a cursor one further.
    const key = generateIdentity().privateKey
    const endless: BackfillSource = async ({ cursor }) => { requests++; return { items: [known], next: cursor + 1 } }
    let rogue = await startPeer(endless, key)
    peers.push(rogue)
    await victim.p2p.dial(rogue.multiaddrs()[0]!)
    // The first page brings the one new trusted item (free); the 32 after it bring only its copy.
    await waitFor('the first catch-up to stop', () => victim.stats().backfill.pages >= 33 && requests >= 33, 30_000)
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(requests).toBe(33)
    expect(victim.stats().backfill.idlePages).toBe(32)
    expect(victim.stats().backfill.paced).toBe(1)
    // Reconnects inside the interval start nothing.
    for (let i = 0; i < 3; i++) {
      await rogue.stop()
      await waitFor('disconnected', () => !victim.p2p.connectedPeers().includes(rogue.peerId), 10_000)
      // The same peer, back on a new port.
      rogue = await startPeer(endless, key)
      peers.push(rogue)
      await victim.p2p.dial(rogue.multiaddrs()[0]!)
      await new Promise(resolve => setTimeout(resolve, 300))
    }
    expect(requests).toBe(33)
  }, 60_000)

  it('a trusted key is rate-limited too', async () => {
    const victim = await startVictim('trusted', { trustedRate: { perMinute: 6, burst: 5 } })
    const relay = await startPeer()
    peers.push(relay)
    await relay.dial(victim.multiaddrs()[0]!)
    await waitFor('the relay subscribed at the victim', () => (victim.p2p.stats().topics[TOPICS.claims] ?? 0) >= 1 && (relay.stats().topics[TOPICS.claims] ?? 0) >= 1, 15_000)
    for (let i = 0; i < 12; i++) await relay.publish(TOPICS.claims, signed(100 + i, builder, 'f'.repeat(40)))
    await waitFor('every claim judged', () => { const g = victim.stats().gossip; return g.accepted + g.ignored >= 12 }, 15_000)
    const { accepted, ignored } = victim.stats().gossip
    // The burst, and at most one more from the refill (6 a minute) while they arrived.
    expect(accepted).toBeGreaterThanOrEqual(5)
    expect(accepted).toBeLessThanOrEqual(6)
    expect(ignored).toBe(12 - accepted)
    const stored = async (): Promise<number> => (await victim.store.claimsForCommit(target(COMMIT, 'v1', 'linux/amd64').repository, 'f'.repeat(40))).length
    await waitFor('the accepted claims stored', async () => await stored() === accepted, 10_000)
  }, 60_000)

  it('a flood of valid untrusted claims is cut at the delivering peer\'s rate; an honest peer\'s claim still gets through', async () => {
    const victim = await startVictim('flood')
    const attacker = await startPeer()
    const honest = await startPeer()
    peers.push(attacker, honest)
    await attacker.dial(victim.multiaddrs()[0]!)
    await honest.dial(victim.multiaddrs()[0]!)
    await waitFor('both subscribed at the victim', () => (victim.p2p.stats().topics[TOPICS.claims] ?? 0) >= 2, 15_000)
    const strangers = Array.from({ length: 30 }, () => generateIdentity())
    const flood = Array.from({ length: 300 }, (_, i) => signed(1000 + i, strangers[i % 30]!, '9'.repeat(40)))
    for (const m of flood) await attacker.publish(TOPICS.claims, m)
    await honest.publish(TOPICS.claims, signed(1, builder, '8'.repeat(40)))
    await waitFor('the honest claim stored', async () => (await victim.store.claimsForCommit(target(COMMIT, 'v1', 'linux/amd64').repository, '8'.repeat(40))).length === 1, 20_000)
    await waitFor('the flood judged or throttled', () => { const s = victim.stats().gossip; return s.accepted + s.ignored + s.rejected + victim.p2p.stats().throttled >= 301 }, 20_000)
    const throttled = victim.p2p.stats().throttled
    // The burst (50) and a few seconds of the per-peer rate (10/s) pass; the rest is never verified.
    expect(throttled).toBeGreaterThan(100)
    expect(victim.stats().gossip.accepted).toBeLessThan(200)
  }, 60_000)
})
