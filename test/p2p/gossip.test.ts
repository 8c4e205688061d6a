import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { LimitError, ValidationError } from '../../src/protocol/errors.js'
import { DEFAULT_MAX_MESSAGE_BYTES, TOPICS, fastMessageId, messageId, peerIdOf } from '../../src/node/p2p/index.js'
import { LOOPBACK, TEST_HEARTBEAT_MS, connect, count, sleep, startNode, waitFor } from './helpers.js'
import type { Policy, TestNode } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Validator by prefix, so one network serves every case. */
const policy: Policy = (_topic, data) => {
  const text = Buffer.from(data.subarray(0, 16)).toString()
  if (text.startsWith('reject:')) return 'reject'
  if (text.startsWith('ignore:')) return 'ignore'
  if (text.startsWith('throw:')) throw new Error('validator bug')
  return 'accept'
}

/** A gossipsub peer with our message ids but none of our limits. */
async function startRogue (signaturePolicy: 'StrictSign' | 'StrictNoSign' = 'StrictNoSign'): Promise<Libp2p<{ pubsub: GossipSub }>> {
  return createLibp2p({
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({
        globalSignaturePolicy: signaturePolicy,
        allowPublishToZeroTopicPeers: true,
        msgIdFn: messageId,
        fastMsgIdFn: fastMessageId,
        heartbeatInterval: TEST_HEARTBEAT_MS
      })
    }
  })
}

describe('gossip over loopback TCP', () => {
  // A line A-B-C-D-E (the far end is four hops from the publisher) plus leaves F and G on C.
  // Senders of bad messages are leaves: gossipsub rightly prunes a penalised peer from the
  // mesh, and a penalised bridge would cut the line.
  let nodes: TestNode[] = []
  const line = (): TestNode[] => nodes.slice(0, 5)

  beforeAll(async () => {
    nodes = await Promise.all(Array.from({ length: 7 }, async () => startNode({ validate: policy })))
    await connect(nodes, [[0, 1], [1, 2], [2, 3], [3, 4], [5, 2], [6, 2]])
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => { await n.node.stop() }))
  })

  it('the PeerId is the builder key', () => {
    for (const n of nodes) {
      expect(n.node.peerId).toBe(peerIdOf(n.publicKey))
      expect(n.node.multiaddrs()[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    }
  })

  it('a message published at one end reaches every node once, from the neighbour that relayed it', async () => {
    const [a] = nodes
    const res = await a!.node.publish(TOPICS.claims, enc('claim-1'))
    expect(res.recipients).toBe(1)
    await waitFor('claim-1 everywhere', () => nodes.slice(1).every(n => count(n, 'claim-1') === 1))
    // Each node's neighbour towards A in the tree: messages carry no author, only who delivered them.
    const upstream = [-1, 0, 1, 2, 3, 2, 2]
    for (const [i, n] of nodes.entries()) {
      if (i === 0) continue
      expect(n.delivered.find(d => d.data === 'claim-1')).toEqual({ topic: TOPICS.claims, data: 'claim-1', from: nodes[upstream[i]!]!.node.peerId })
    }
    // Not echoed to the publisher.
    expect(count(a!, 'claim-1')).toBe(0)
  })

  it('a message published in the middle reaches both ends', async () => {
    await nodes[2]!.node.publish(TOPICS.announcements, enc('announce-1'))
    await waitFor('announce-1 everywhere', () => [0, 1, 3, 4, 5, 6].every(i => count(nodes[i]!, 'announce-1') === 1))
    expect(nodes[0]!.delivered.find(d => d.data === 'announce-1')?.topic).toBe(TOPICS.announcements)
  })

  it('the same bytes from two publishers are one message (hash ids): delivered once per node', async () => {
    const [a, , , , e] = nodes
    await Promise.all([
      a!.node.publish(TOPICS.claims, enc('claim-dup')),
      e!.node.publish(TOPICS.claims, enc('claim-dup'))
    ])
    await waitFor('claim-dup at B, C, D, F, G', () => [1, 2, 3, 5, 6].every(i => count(nodes[i]!, 'claim-dup') === 1))
    // Leave time for every relay and lazy IHAVE to arrive before checking nothing doubled.
    await sleep(TEST_HEARTBEAT_MS * 6)
    for (const n of nodes) expect(count(n, 'claim-dup')).toBeLessThanOrEqual(1)
    // The message id is the data hash, not the author: a re-publish of known bytes is a no-op.
    const again = await nodes[2]!.node.publish(TOPICS.claims, enc('claim-dup'))
    expect(again.recipients).toBe(0)
  })

  it('local publish refuses an unknown topic and oversized data', async () => {
    await expect(nodes[0]!.node.publish('/other/1', enc('x'))).rejects.toBeInstanceOf(ValidationError)
    const big = new Uint8Array(DEFAULT_MAX_MESSAGE_BYTES + 1)
    await expect(nodes[0]!.node.publish(TOPICS.claims, big)).rejects.toBeInstanceOf(LimitError)
  })

  it('reject stops propagation at the first hop and costs the sender score', async () => {
    const c = nodes[2]!
    const f = nodes[5]!
    await f.node.publish(TOPICS.claims, enc('reject:forged'))
    await waitFor('C to judge the forged message', () => c.validated.some(v => v.data === 'reject:forged'))
    // A good message through C afterwards proves the paths are open; the forged one went nowhere.
    await nodes[6]!.node.publish(TOPICS.claims, enc('after-forged'))
    await waitFor('after-forged on the line', () => line().every(n => count(n, 'after-forged') === 1))
    await sleep(TEST_HEARTBEAT_MS * 4)
    for (const n of nodes) expect(count(n, 'reject:forged')).toBe(0)
    for (const [i, n] of nodes.entries()) if (i !== 2) expect(n.validated.some(v => v.data === 'reject:forged')).toBe(false)
    await waitFor('F penalised at C', () => c.node.score(f.node.peerId) < 0)
  })

  it('ignore is neither delivered nor relayed, and is not penalised', async () => {
    const [a, b] = nodes
    const before = b!.node.score(a!.node.peerId)
    await a!.node.publish(TOPICS.claims, enc('ignore:known'))
    await waitFor('B to judge the ignored message', () => b!.validated.some(v => v.data === 'ignore:known'))
    await a!.node.publish(TOPICS.claims, enc('after-ignore'))
    await waitFor('after-ignore at E', () => count(nodes[4]!, 'after-ignore') === 1)
    for (const n of nodes) expect(count(n, 'ignore:known')).toBe(0)
    for (const n of nodes.slice(2)) expect(n.validated.some(v => v.data === 'ignore:known')).toBe(false)
    // Ignore is for duplicates and the like: no penalty.
    expect(b!.node.score(a!.node.peerId)).toBeGreaterThanOrEqual(Math.min(before, 0))
  })

  it('a validator that throws counts as reject and the node keeps working', async () => {
    const c = nodes[2]!
    const g = nodes[6]!
    const before = c.node.score(g.node.peerId)
    await g.node.publish(TOPICS.claims, enc('throw:boom'))
    await waitFor('C to judge it', () => c.validated.some(v => v.data === 'throw:boom'))
    await nodes[0]!.node.publish(TOPICS.claims, enc('after-throw'))
    await waitFor('after-throw at E', () => count(nodes[4]!, 'after-throw') === 1)
    for (const n of nodes) expect(count(n, 'throw:boom')).toBe(0)
    for (const [i, n] of nodes.entries()) if (i !== 2) expect(n.validated.some(v => v.data === 'throw:boom')).toBe(false)
    // Scores are cached between heartbeats.
    await waitFor('G penalised at C', () => c.node.score(g.node.peerId) < Math.min(before, 0))
  })

  it('stats report peers and topic subscribers', () => {
    const s = nodes[3]!.node.stats()
    expect(s.peers).toBe(2)
    expect(s.topics[TOPICS.claims]).toBe(2)
    expect(nodes[3]!.node.connectedPeers().sort()).toEqual([nodes[2]!.node.peerId, nodes[4]!.node.peerId].sort())
  })

  describe('a peer that does not enforce the size limit', () => {
    let rogue: Libp2p<{ pubsub: GossipSub }>

    beforeAll(async () => {
      rogue = await startRogue()
      rogue.services.pubsub.subscribe(TOPICS.claims)
      await rogue.dial(multiaddr(nodes[0]!.node.multiaddrs()[0]!))
      await waitFor('rogue in the mesh', () => rogue.services.pubsub.getSubscribers(TOPICS.claims).length === 1)
    })

    afterAll(async () => { await rogue.stop() })

    it('an oversized message is dropped before the validator and never delivered', async () => {
      const big = 'big:' + 'x'.repeat(DEFAULT_MAX_MESSAGE_BYTES)
      await rogue.services.pubsub.publish(TOPICS.claims, enc(big))
      // A small message from the same peer proves it is heard.
      await rogue.services.pubsub.publish(TOPICS.claims, enc('rogue-small'))
      await waitFor('rogue-small at E', () => count(nodes[4]!, 'rogue-small') === 1)
      await sleep(TEST_HEARTBEAT_MS * 4)
      for (const n of nodes) {
        expect(n.delivered.some(d => d.data.startsWith('big:'))).toBe(false)
        expect(n.validated.some(v => v.data.startsWith('big:'))).toBe(false)
      }
      await waitFor('rogue penalised at A', () => nodes[0]!.node.score(rogue.peerId.toString()) < 0)
    })
  })
})

describe('messages signed by libp2p (StrictSign)', () => {
  it('are rejected before the validator, and their sender penalised', async () => {
    const target = await startNode()
    const signer = await startRogue('StrictSign')
    try {
      signer.services.pubsub.subscribe(TOPICS.claims)
      await signer.dial(multiaddr(target.node.multiaddrs()[0]!))
      await waitFor('the signer subscribed at the target', () => target.node.stats().topics[TOPICS.claims] === 1)
      await waitFor('the target subscribed at the signer', () => signer.services.pubsub.getSubscribers(TOPICS.claims).length === 1)
      await signer.services.pubsub.publish(TOPICS.claims, enc('signed-by-libp2p'))
      await waitFor('the signer penalised', () => target.node.score(signer.peerId.toString()) < 0)
      expect(target.validated.some(v => v.data === 'signed-by-libp2p')).toBe(false)
      expect(target.delivered.some(d => d.data === 'signed-by-libp2p')).toBe(false)
    } finally {
      await Promise.all([target.node.stop(), signer.stop()])
    }
  })
})

describe('messages that carry only a libp2p from field', () => {
  it('are rejected before the validator, their sender penalised, not relayed, and do not shadow the honest copy', async () => {
    const target = await startNode()
    const watcher = await startNode()
    const friend = await startNode()
    const forger = await startRogue()
    // gossipsub under StrictNoSign sends no author: write one into every message it sends, as
    // a forger would (a PeerId's multihash, here the friend's).
    const pubsub = forger.services.pubsub as unknown as { sendRpc: (id: string, rpc: { messages?: Array<{ from?: Uint8Array }> }) => boolean }
    const send = pubsub.sendRpc.bind(pubsub)
    const forgedAuthor = peerIdFromString(friend.node.peerId).toMultihash().bytes
    pubsub.sendRpc = (id, rpc) => {
      for (const m of rpc.messages ?? []) m.from = forgedAuthor
      return send(id, rpc)
    }
    try {
      forger.services.pubsub.subscribe(TOPICS.claims)
      await forger.dial(multiaddr(target.node.multiaddrs()[0]!))
      await watcher.node.dial(target.node.multiaddrs()[0]!)
      await friend.node.dial(target.node.multiaddrs()[0]!)
      await waitFor('all three subscribed at the target', () => target.node.stats().topics[TOPICS.claims] === 3)
      await waitFor('the target subscribed at the forger', () => forger.services.pubsub.getSubscribers(TOPICS.claims).length === 1)
      await waitFor('the target subscribed at the friend', () => friend.node.stats().topics[TOPICS.claims] === 1)
      await forger.services.pubsub.publish(TOPICS.claims, enc('authored-claim'))
      await waitFor('the forger penalised', () => target.node.score(forger.peerId.toString()) < 0)
      expect(target.validated.some(v => v.data === 'authored-claim')).toBe(false)
      expect(target.delivered.some(d => d.data === 'authored-claim')).toBe(false)
      // The same bytes without the field, from an honest peer: a new message, delivered and relayed.
      await friend.node.publish(TOPICS.claims, enc('authored-claim'))
      await waitFor('the honest copy at the target', () => count(target, 'authored-claim') === 1)
      await waitFor('the honest copy relayed to the watcher', () => count(watcher, 'authored-claim') === 1)
      expect(target.delivered.find(d => d.data === 'authored-claim')?.from).toBe(friend.node.peerId)
      expect(watcher.delivered.find(d => d.data === 'authored-claim')?.from).toBe(target.node.peerId)
      expect(target.node.score(friend.node.peerId)).toBeGreaterThanOrEqual(0)
    } finally {
      await Promise.all([target.node.stop(), watcher.node.stop(), friend.node.stop(), forger.stop()])
    }
  })
})

describe('the gossipsub RPC frame limit', () => {
  it('a frame over maxRpcBytes is cut at the transport; other peers are unaffected', async () => {
    // The message limit stays at its default (256 KiB): only the frame limit can stop a 64 KiB message.
    const target = await startNode({ init: { gossip: { maxRpcBytes: 16 * 1024 } } })
    const friend = await startNode()
    const rogue = await startRogue()
    try {
      rogue.services.pubsub.subscribe(TOPICS.claims)
      await rogue.dial(multiaddr(target.node.multiaddrs()[0]!))
      await friend.node.dial(target.node.multiaddrs()[0]!)
      await waitFor('both subscribed at the target', () => target.node.stats().topics[TOPICS.claims] === 2)
      // The friend must know the target's subscription too, or its publish reaches nobody.
      await waitFor('the target subscribed at the friend', () => friend.node.stats().topics[TOPICS.claims] === 1)
      await rogue.services.pubsub.publish(TOPICS.claims, enc('huge:' + 'x'.repeat(64 * 1024)))
      await friend.node.publish(TOPICS.claims, enc('friendly'))
      await waitFor('friendly at the target', () => count(target, 'friendly') === 1)
      await sleep(TEST_HEARTBEAT_MS * 4)
      expect(target.delivered.some(d => d.data.startsWith('huge:'))).toBe(false)
      expect(target.validated.some(v => v.data.startsWith('huge:'))).toBe(false)
    } finally {
      await Promise.all([target.node.stop(), friend.node.stop(), rogue.stop()])
    }
  })
})

describe('message ids', () => {
  it('are the sha256 of the data, fast and full alike, whichever is asked first', async () => {
    const { createHash } = await import('node:crypto')
    for (const data of [new TextEncoder().encode('claim'), new Uint8Array(0), new Uint8Array(5000).fill(7)]) {
      const sha = createHash('sha256').update(data).digest()
      const copy = Uint8Array.from(data)
      expect(fastMessageId({ data })).toBe(sha.toString('base64'))
      expect(Buffer.from(messageId({ data } as unknown as Parameters<typeof messageId>[0])).equals(sha)).toBe(true)
      expect(Buffer.from(messageId({ data: copy } as unknown as Parameters<typeof messageId>[0])).equals(sha)).toBe(true)
      expect(fastMessageId({ data: copy })).toBe(sha.toString('base64'))
    }
    expect(fastMessageId({})).toBe(createHash('sha256').update(new Uint8Array(0)).digest('base64'))
  })
})
