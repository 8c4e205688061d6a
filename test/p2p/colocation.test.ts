import { afterAll, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { multiaddr } from '@multiformats/multiaddr'
import { TOPICS, fastMessageId, messageId } from '../../src/node/p2p/index.js'
import { COLOCATION } from '../../src/node/p2p/gossip.js'
import { LOOPBACK, TEST_HEARTBEAT_MS, count, sleep, startNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

/** A gossipsub peer that connects, subscribes to nothing and sends nothing: its score stays 0. */
async function startVisitor (): Promise<Libp2p<{ pubsub: GossipSub }>> {
  const node = await createLibp2p({
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', msgIdFn: messageId, fastMsgIdFn: fastMessageId, heartbeatInterval: TEST_HEARTBEAT_MS })
    }
  })
  await node.start()
  return node
}

describe('IP colocation counts only live peers', () => {
  const nodes: TestNode[] = []
  afterAll(async () => {
    await Promise.all(nodes.map(async n => { await n.node.stop() }))
  })

  it(`after ${COLOCATION.threshold + 8} short-lived peers on one address, an honest peer on it still delivers`, async () => {
    const victim = await startNode()
    nodes.push(victim)
    const target = multiaddr(victim.node.multiaddrs()[0]!)
    const visitors = COLOCATION.threshold + 8
    // Two waves, so the crowd is really live at once in the first (penalised while it lasts) and
    // the second adds more departed records.
    for (const wave of [Math.ceil(visitors / 2), Math.floor(visitors / 2)]) {
      const peers = await Promise.all(Array.from({ length: wave }, async () => startVisitor()))
      // libp2p admits five inbound connections a second from one address: dial at that pace.
      for (const p of peers) {
        await p.dial(target)
        await sleep(220)
      }
      // Both ends have a gossipsub stream: the victim's router holds a score record for each.
      await waitFor('visitors known to gossipsub', () => peers.every(p => p.services.pubsub.getPeers().some(id => id.toString() === victim.node.peerId)), 15_000)
      await sleep(3 * TEST_HEARTBEAT_MS)
      await Promise.all(peers.map(async p => { await p.stop() }))
    }
    await waitFor('visitors gone', () => victim.node.connectedPeers().length === 0, 10_000)

    const honest = await startNode()
    nodes.push(honest)
    await honest.node.dial(victim.node.multiaddrs()[0]!)
    await waitFor('a mesh between the two', () => victim.node.stats().mesh[TOPICS.claims] === 1 && honest.node.stats().mesh[TOPICS.claims] === 1, 15_000)
    expect(victim.node.score(honest.node.peerId)).toBeGreaterThanOrEqual(0)
    await honest.node.publish(TOPICS.claims, new TextEncoder().encode('honest claim after the crowd left'))
    await waitFor('delivery at the victim', () => count(victim, 'honest claim after the crowd left') === 1, 10_000)
  }, 90_000)
})
