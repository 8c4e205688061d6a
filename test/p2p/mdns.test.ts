import { describe, expect, it } from 'vitest'
import { TOPICS } from '../../src/node/p2p/index.js'
import { count, startNode, waitFor } from './helpers.js'

describe('mDNS', () => {
  it('neighbours find each other without bootstrap peers, connect and gossip', async () => {
    const a = await startNode({ init: { mdns: true } })
    const b = await startNode({ init: { mdns: true } })
    const c = await startNode() // no mDNS: never found, never dialled
    try {
      await waitFor('a and b connected', () => a.node.connectedPeers().includes(b.node.peerId) && b.node.connectedPeers().includes(a.node.peerId), 20_000)
      await waitFor('b subscribed at a', () => (a.node.stats().topics[TOPICS.claims] ?? 0) >= 1, 10_000)
      await a.node.publish(TOPICS.claims, new TextEncoder().encode('found by mdns'))
      await waitFor('delivered at b', () => count(b, 'found by mdns') === 1, 10_000)
      expect(c.node.connectedPeers()).toEqual([])
    } finally {
      await Promise.all([a.node.stop(), b.node.stop(), c.node.stop()])
    }
  }, 40_000)
})
