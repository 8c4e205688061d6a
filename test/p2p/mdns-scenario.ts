/**
 * The mDNS scenario, run by mdns.test.ts inside a network namespace of its own (only a
 * loopback interface, with multicast routed to it) so that no multicast leaves the machine.
 * Prints one JSON line with what it saw.
 */
import { TOPICS } from '../../src/node/p2p/index.js'
import { count, startNode, waitFor } from './helpers.js'

const a = await startNode({ init: { mdns: true } })
const b = await startNode({ init: { mdns: true } })
const c = await startNode() // no mDNS: never found, never dialled
try {
  await waitFor('a and b connected', () => a.node.connectedPeers().includes(b.node.peerId) && b.node.connectedPeers().includes(a.node.peerId), 20_000)
  await waitFor('b subscribed at a', () => (a.node.stats().topics[TOPICS.claims] ?? 0) >= 1, 10_000)
  await a.node.publish(TOPICS.claims, new TextEncoder().encode('found by mdns'))
  await waitFor('delivered at b', () => count(b, 'found by mdns') === 1, 10_000)
  console.log(JSON.stringify({ connected: true, deliveredAtB: count(b, 'found by mdns'), strangerPeers: c.node.connectedPeers().length }))
} catch (err) {
  console.log(JSON.stringify({ connected: false, error: (err as Error).message }))
  process.exitCode = 1
} finally {
  await Promise.all([a.node.stop(), b.node.stop(), c.node.stop()])
}
