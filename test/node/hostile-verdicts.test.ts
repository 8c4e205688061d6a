import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consensusForTag } from '../../src/node/consensus/service.js'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { TOPICS, type P2PNode } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { signEnvelope, type Envelope } from '../../src/protocol/dsse.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { claimToStatement, decodeMessage, signAnnouncement, signClaim, targetKey } from '../../src/protocol/messages.js'
import { PAYLOAD_TYPE, type Claim } from '../../src/protocol/types.js'
import { announcement, claim, imageResult, target } from '../http/fixtures.js'
import { LOOPBACK, policyFor, startRawPeer, verdictsOf, waitFor } from './helpers.js'

/**
 * Hostile peers against three honest nodes on loopback: real libp2p (gossip and back-fill),
 * the real level store and the real validator. The attacker is a libp2p peer with the same
 * stack that relays anything and serves whatever back-fill items it is given.
 */

// The store's per-query read bound, lowered so that crowding it takes hundreds of claims
// (seconds) rather than the thousands the default bound needs; the code path is the same.
const READ_BOUND = 100

async function startNode (dir: string, policy: ReturnType<typeof policyFor>, bootstrap: string[] = []): Promise<Daemon> {
  const store = await createStore({}, { path: join(dir, 'store'), maxClaimsPerQuery: READ_BOUND })
  const d = await createDaemon({ identity: generateIdentity(), store, policy }, {
    listen: [LOOPBACK],
    bootstrap,
    mdns: false,
    // The per-peer and global gossip rates bound a flood over time; lifted here so that the
    // state a slow or many-peer flood reaches is reached in seconds from one peer.
    gossip: { heartbeatIntervalMs: 100, peerRate: { perSecond: 100_000, burst: 100_000 }, globalRate: { perSecond: 100_000, burst: 100_000 } }
  })
  await d.start()
  return d
}

const bytes = (env: Envelope | string): Uint8Array => Buffer.from(typeof env === 'string' ? env : JSON.stringify(env))
const idOf = (env: Envelope): string => decodeMessage(env, { allowEmbeddedKeys: true }).id

/** `env` with `extra` signatures after (or, with `first`, before) its own. */
function withSignatures (env: Envelope, extra: Envelope['signatures'], first = false): Envelope {
  return { ...env, signatures: first ? [...extra, ...env.signatures] : [...env.signatures, ...extra] }
}

/** A stranger's valid signature over exactly the payload of `env`. */
function coSignature (env: Envelope, stranger: SigningIdentity): Envelope['signatures'] {
  return signEnvelope(env.payloadType, Buffer.from(env.payload, 'base64'), stranger).signatures
}

const junk = (): Envelope['signatures'] => [{ keyid: '', sig: randomBytes(64).toString('base64') }]

describe('hostile peers against three honest nodes', () => {
  let root: string
  const builders = [generateIdentity(), generateIdentity(), generateIdentity()]
  const announcer = generateIdentity()
  const policy = policyFor(builders, [announcer], 2)
  const nodes: Daemon[] = []
  const peers: P2PNode[] = []
  let rogue: P2PNode

  /**
   * Publishes from the rogue, then a trusted sentinel; waits until every node stored the
   * sentinel and its store has stopped growing for a second (writes are synced one by one).
   */
  async function publishAll (envs: Array<Envelope | string>, topic: string = TOPICS.claims): Promise<void> {
    for (const e of envs) await rogue.publish(topic, bytes(e))
    const sentinel = signClaim(claim(target('9'.repeat(40), `sentinel-${Math.random()}`, 'linux/amd64'), { result: imageResult('sentinel') }), builders[0]!)
    await rogue.publish(TOPICS.claims, bytes(sentinel))
    const id = idOf(sentinel)
    await waitFor('the sentinel on every node', async () => (await Promise.all(nodes.map(async n => await n.store.hasMessage(id)))).every(Boolean), 60_000)
    let last = ''
    let still = 0
    await waitFor('stores at rest', async () => {
      const now = (await Promise.all(nodes.map(async n => (await n.store.stats()).messages))).join(',')
      still = now === last ? still + 1 : 0
      last = now
      return still >= 20
    }, 60_000)
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-hostile-'))
    nodes.push(await startNode(join(root, 'n0'), policy))
    const boot = [nodes[0]!.multiaddrs()[0]!]
    nodes.push(await startNode(join(root, 'n1'), policy, boot))
    nodes.push(await startNode(join(root, 'n2'), policy, boot))
    rogue = await startRawPeer()
    peers.push(rogue)
    for (const n of nodes) await rogue.dial(n.multiaddrs()[0]!)
    await waitFor('a connected network', () => nodes.every(n => n.p2p.connectedPeers().length >= 2) &&
      (rogue.stats().topics[TOPICS.claims] ?? 0) >= 3 && (rogue.stats().topics[TOPICS.announcements] ?? 0) >= 3, 30_000)
  }, 60_000)

  afterAll(async () => {
    for (const p of peers) await p.stop().catch(() => {})
    for (const n of nodes) await n.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('counts every trusted claim however many untrusted claims for the commit came first, over gossip and back-fill', async () => {
    const commit = '1'.repeat(40)
    await publishAll([signAnnouncement(announcement('crowd', commit, [['base', 'linux/amd64']]), announcer)], TOPICS.announcements)
    // Three times the read bound of untrusted claims for the commit, 14 per key, each for a
    // fresh variant (so no per-target cap applies), all before the honest claims.
    const flood: Envelope[] = []
    for (let k = 0; flood.length < 3 * READ_BOUND; k++) {
      const stranger = generateIdentity()
      for (let i = 0; i < 14 && flood.length < 3 * READ_BOUND; i++) {
        flood.push(signClaim(claim(target(commit, `fresh-${k}-${i}`, 'linux/amd64', 'crowd'), { result: imageResult(`junk ${k} ${i}`) }), stranger))
      }
    }
    await publishAll(flood)
    // Every one of them is accepted (14 a key is within the per-key rate) and stored.
    await waitFor('the flood stored on every node', async () => (await Promise.all(nodes.map(async n => (await n.store.stats()).claims))).every(c => c > flood.length), 120_000)

    const good = imageResult('crowd base')
    const honest = builders.map(b => signClaim(claim(target(commit, 'base', 'linux/amd64', 'crowd'), { result: good }), b))
    await publishAll(honest)
    await waitFor('the honest claims on every node', async () => (await Promise.all(nodes.flatMap(n => honest.map(async e => await n.store.hasMessage(idOf(e)))))).every(Boolean), 60_000)
    for (const n of nodes) {
      const c = await consensusForTag(n.store, policy, 'crowd')
      expect(c?.targets.map(t => [t.status, t.agreeing.length, t.trustedCount])).toEqual([['reproducible', 3, 3]])
    }

    // A node that joins later takes it all in through back-fill and reaches the same verdict.
    const late = await startNode(join(root, 'late'), policy, [nodes[0]!.multiaddrs()[0]!])
    nodes.push(late)
    await waitFor('back-fill of the honest claims', async () => (await Promise.all(honest.map(async e => await late.store.hasMessage(idOf(e))))).every(Boolean), 120_000)
    // Back-fill reads the newest pages first: the release's announcement, older than the flood,
    // may come after its claims. The verdict follows once it is there.
    await waitFor('the late node\'s verdict', async () => (await consensusForTag(late.store, policy, 'crowd')) !== undefined, 120_000)
    const c = await consensusForTag(late.store, policy, 'crowd')
    expect(c?.targets.map(t => [t.status, t.agreeing.length])).toEqual([['reproducible', 3]])
    await late.stop()
    nodes.pop()
  }, 300_000)

  it('keeps the per-target cap on untrusted claims when they arrive together', async () => {
    const t = target('2'.repeat(40), 'base', 'linux/amd64')
    const envs = Array.from({ length: 80 }, (_, i) => signClaim(claim(t, { result: imageResult(`together ${i}`) }), generateIdentity()))
    await Promise.all(envs.map(async e => await rogue.publish(TOPICS.claims, bytes(e))))
    await publishAll([])
    for (const n of nodes) {
      const stored = await n.store.claimsForTarget(targetKey(t))
      expect(stored.length).toBeGreaterThan(0)
      expect(stored.length).toBeLessThanOrEqual(16)
    }
  }, 60_000)

  it('stores one message per authenticated content: junk and co-signatures mint no new id, over gossip and back-fill', async () => {
    const t = target('3'.repeat(40), 'base', 'linux/amd64')
    const h = signClaim(claim(t, { result: imageResult('replayed') }), builders[0]!)
    const stranger = generateIdentity()
    const replays = [
      withSignatures(h, junk()),
      withSignatures(h, [...junk(), ...junk()]),
      withSignatures(h, junk(), true),
      withSignatures(h, coSignature(h, stranger)),
      withSignatures(h, coSignature(h, stranger), true),
      h
    ]
    await publishAll(replays)
    for (const n of nodes) {
      const stored = await n.store.claimsForTarget(targetKey(t))
      expect(stored.map(m => [m.id, m.keyId])).toEqual([[idOf(h), builders[0]!.keyId]])
    }

    // The same replays served by a back-fill peer to a node that never saw them.
    const server = await startRawPeer(replays.map(bytes))
    peers.push(server)
    const fresh = await startNode(join(root, 'fresh'), policy)
    try {
      await fresh.p2p.dial(server.multiaddrs()[0]!)
      await waitFor('back-fill from the replaying peer', async () => await fresh.store.hasMessage(idOf(h)), 30_000)
      await waitFor('the whole page judged', () => fresh.stats().backfill.pages >= 1, 10_000)
      const stored = await fresh.store.claimsForTarget(targetKey(t))
      expect(stored.map(m => m.id)).toEqual([idOf(h)])
      expect((await fresh.store.stats()).claims).toBe(1)
    } finally {
      await fresh.stop()
    }
  }, 60_000)

  it('credits a co-signed claim to its trusted signer, whatever the order, and reads an unset keyid as empty', async () => {
    const commit = '4'.repeat(40)
    const good = imageResult('co-signed')
    // Each trusted signature comes second, behind a stranger's valid one over the same payload.
    const [c0, c1] = [builders[0]!, builders[1]!].map(b => signClaim(claim(target(commit, 'base', 'linux/amd64'), { result: good }), b)) as [Envelope, Envelope]
    const front = [withSignatures(c0, coSignature(c0, generateIdentity()), true), withSignatures(c1, coSignature(c1, generateIdentity()), true)]
    // DSSE: a signature without keyid is one with an empty keyid.
    const noHint = signClaim(claim(target(commit, 'app', 'linux/amd64'), { result: imageResult('no hint') }), builders[2]!)
    delete (noHint.signatures[0] as { keyid?: string }).keyid
    const noHint2 = signClaim(claim(target(commit, 'app', 'linux/amd64'), { result: imageResult('no hint') }), builders[1]!)
    delete (noHint2.signatures[0] as { keyid?: string }).keyid
    // Verdicts are of announced releases: the announcement comes first.
    await publishAll([signAnnouncement(announcement('co-signed', commit, [['app', 'linux/amd64'], ['base', 'linux/amd64']]), announcer)], TOPICS.announcements)
    await publishAll([...front, noHint, noHint2])
    for (const n of nodes) {
      const verdicts = await verdictsOf(n, 'https://github.com/m1k1o/neko', commit)
      expect(verdicts.map(v => [v.target.variant, v.status, v.agreeing.map(a => a.keyId).sort()])).toEqual([
        ['app', 'reproducible', [builders[1]!.keyId, builders[2]!.keyId].sort()],
        ['base', 'reproducible', [builders[0]!.keyId, builders[1]!.keyId].sort()]
      ])
    }
  }, 60_000)

  it('rejects a signed payload with a duplicate key', async () => {
    const t = target('5'.repeat(40), 'base', 'linux/amd64')
    const c: Claim = claim(t, { result: imageResult('first reader') })
    const text = JSON.stringify(claimToStatement(c))
    // A reader that keeps the first "subject" sees another digest than one that keeps the last.
    const dup = text.replace('"subject":', `"subject":[{"name":"x","digest":{"sha256":"${'0'.repeat(64)}"}}],"subject":`)
    expect(dup).not.toBe(text)
    const env = signEnvelope(PAYLOAD_TYPE, Buffer.from(dup), builders[0]!)
    const before = nodes.map(n => n.stats().gossip.rejected)
    await publishAll([env])
    for (const [i, n] of nodes.entries()) {
      expect(await n.store.claimsForTarget(targetKey(t))).toEqual([])
      expect(n.stats().gossip.rejected).toBeGreaterThan(before[i]!)
    }
  }, 60_000)
})
