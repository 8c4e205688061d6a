import { peerIdFromString } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { createP2PNode, type P2PInit, type P2PNode } from '../../src/node/p2p/index.js'
import { multicodec as DCUTR_PROTOCOL } from '@libp2p/dcutr'
import { multiaddr } from '@multiformats/multiaddr'
import { createRelayGate, relayLimits, relaySlots, relayServing, hostHasPublicAddress } from '../../src/node/p2p/nat.js'
import { peerIdOf } from '../../src/node/p2p/identity.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { LOOPBACK, waitFor } from '../node/helpers.js'
import { startRawNode } from './helpers.js'

// Circuit relay v2 on loopback, between real libp2p nodes: reservations, circuits and the
// limits a relay keeps (docs/volunteers.md). The NAT scenario itself is nat.test.ts.

const nodes: P2PNode[] = []
afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.stop() })) })

async function start (init: Partial<P2PInit> = {}, items: Uint8Array[] = []): Promise<P2PNode> {
  const node = await createP2PNode({
    privateKey: generateIdentity().privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    backfillSource: async ({ cursor }) => cursor === 0 ? { items, next: items.length } : { items: [], next: cursor }
  }, { listen: [LOOPBACK], mdns: false, backfill: { maxItemBytes: 256 * 1024 }, ...init })
  await node.start()
  nodes.push(node)
  return node
}

const relayOf = async (nat: NonNullable<P2PInit['nat']>): Promise<P2PNode> => await start({ nat: { relayServer: 'on', dht: false, ...nat } })
/** A node with one relay slot that knows only the relay. */
const behindNat = async (relay: P2PNode, items: Uint8Array[] = []): Promise<P2PNode> => await start({ bootstrap: [relay.multiaddrs()[0]!], nat: { relays: 1, dht: false } }, items)
const circuitOf = (n: P2PNode): string | undefined => n.stats().reachability.addresses.find(a => a.includes('/p2p-circuit/'))

describe('circuit relay', () => {
  it('a node with a relay slot is reached through the relay: back-fill runs over the relayed connection, which stays counted as relayed', async () => {
    const relay = await relayOf({})
    const items = [Buffer.from('one'), Buffer.from('two')]
    const a = await behindNat(relay, items)
    await waitFor('a relayed address', () => circuitOf(a) !== undefined, 15_000)
    expect(a.stats().reachability).toMatchObject({ mode: 'relayed', relays: [relay.peerId] })
    expect(relay.stats().reachability.relayServer).toEqual({ serving: true, reservations: 1 })

    const b = await start({ nat: { dht: false } })
    const page = await b.backfill(circuitOf(a)!, 0, 10)
    expect(page.items.map(i => Buffer.from(i).toString())).toEqual(['one', 'two'])
    expect(b.peerList().find(p => p.peerId === a.peerId)?.relayed).toBe(true)
    expect(b.stats().reachability.connections.relayed).toBe(1)
    // Both ends count what the circuit carried (handshakes, the request and the page).
    expect(b.stats().relayedBytes).toBeGreaterThan(6)
    expect(a.stats().relayedBytes).toBeGreaterThan(6)
  }, 40_000)

  it('refuses reservations over its limit and circuits to a peer that holds no reservation', async () => {
    const relay = await relayOf({ relayLimits: { maxReservations: 1 } })
    const a = await behindNat(relay)
    await waitFor('a relayed address', () => circuitOf(a) !== undefined, 15_000)
    const c = await behindNat(relay)
    await waitFor('c connected to the relay', () => c.connectedPeers().includes(relay.peerId), 15_000)
    await new Promise(resolve => setTimeout(resolve, 2_000))
    expect(circuitOf(c)).toBeUndefined()
    expect(relay.stats().reachability.relayServer.reservations).toBe(1)

    const stranger = peerIdOf(generateIdentity().privateKey)
    const b = await start({ nat: { dht: false } })
    await expect(b.backfill(`${relay.multiaddrs()[0]!}/p2p-circuit/p2p/${stranger}`, 0, 10)).rejects.toThrow(/NO_RESERVATION|reservation/i)
  }, 40_000)

  it('drops a circuit at its byte limit', async () => {
    const relay = await relayOf({ relayLimits: { maxCircuitBytes: 64 * 1024 } })
    // 200 KiB to serve: more than the circuit may carry.
    const a = await behindNat(relay, Array.from({ length: 4 }, () => Buffer.alloc(50 * 1024, 7)))
    await waitFor('a relayed address', () => circuitOf(a) !== undefined, 15_000)
    const b = await start({ nat: { dht: false }, backfill: { maxItemBytes: 256 * 1024 } })
    await expect(b.backfill(circuitOf(a)!, 0, 10)).rejects.toThrow()
    await waitFor('the relayed connection closed', () => !b.connectedPeers().includes(a.peerId), 10_000)
    // The closed circuit's count stays in the total, and it is the relay's limit at most.
    expect(b.stats().relayedBytes).toBeGreaterThan(0)
    expect(b.stats().relayedBytes).toBeLessThanOrEqual(64 * 1024)
  }, 40_000)

  it('drops a circuit at its time limit', async () => {
    const relay = await relayOf({ relayLimits: { maxCircuitSeconds: 2 } })
    const a = await behindNat(relay, [Buffer.from('x')])
    await waitFor('a relayed address', () => circuitOf(a) !== undefined, 15_000)
    const b = await start({ nat: { dht: false } })
    expect((await b.backfill(circuitOf(a)!, 0, 10)).items).toHaveLength(1)
    const opened = Date.now()
    await waitFor('the relayed connection closed', () => !b.connectedPeers().includes(a.peerId), 10_000)
    expect(Date.now() - opened).toBeLessThan(5_000)
  }, 40_000)

  it('never relays for a penalised peer', async () => {
    const relay = await relayOf({})
    const a = await behindNat(relay, [Buffer.from('x')])
    await waitFor('a relayed address', () => circuitOf(a) !== undefined, 15_000)
    const b = await start({ nat: { dht: false } })
    await b.dial(relay.multiaddrs()[0]!)
    relay.penalize(b.peerId, 1_000)
    await expect(b.backfill(circuitOf(a)!, 0, 10)).rejects.toThrow()
    expect(relay.stats().relayRefused.penalised).toBeGreaterThanOrEqual(1)
  }, 40_000)
})

describe('hole punching', () => {
  it('rate-limits a peer flooding hole-punch (DCUtR) requests, as relay requests are, and refuses a penalised one', async () => {
    const a = await start({ nat: { dht: false, relayLimits: { requestBurst: 3, requestsPerMinute: 1 } } })
    const flooder = await startRawNode()
    try {
      // Each request is a DCUtR stream closed at once: admitted ones end in DCUtR's own
      // handler (a connect message missing), refused ones never reach it.
      for (let i = 0; i < 10; i++) {
        const before = a.stats().relayRefused.rate ?? 0
        const stream = await flooder.dialProtocol(multiaddr(a.multiaddrs()[0]!), DCUTR_PROTOCOL)
        await stream.close().catch(() => {})
        await waitFor('the request handled', () => stream.status !== 'open' && stream.status !== 'closing', 5_000)
        // DCUtR takes one stream per connection at a time: the next waits until this one is done.
        await new Promise(resolve => setTimeout(resolve, i < 3 ? 300 : 50))
        expect(a.stats().relayRefused.rate).toBe(i < 3 ? before : before + 1)
      }
      expect(a.stats().relayRefused).toEqual({ rate: 7, penalised: 0 })
      a.penalize(flooder.peerId.toString(), 1_000)
      await waitFor('the graylisted peer hung up on', () => flooder.getConnections(peerIdFromString(a.peerId)).length === 0, 5_000)
      // Refused as soon as it is opened: the opening itself may already fail.
      await flooder.dialProtocol(multiaddr(a.multiaddrs()[0]!), DCUTR_PROTOCOL).catch(() => {})
      await waitFor('the penalised request refused', () => a.stats().relayRefused.penalised === 1, 5_000)
    } finally {
      await flooder.stop()
    }
  }, 40_000)
})

describe('relay gate and settings', () => {
  const peer = (): ReturnType<typeof peerIdFromString> => peerIdFromString(peerIdOf(generateIdentity().privateKey))

  it('rate-limits reservation and circuit requests per peer, like gossip admission, and refuses penalised peers', async () => {
    const bad = new Set<string>()
    const gate = createRelayGate({ limits: relayLimits({ requestBurst: 3, requestsPerMinute: 1 }), penalised: p => bad.has(p) })
    const flooder = peer()
    const honest = peer()
    const answers = await Promise.all(Array.from({ length: 10 }, async () => await gate.gater.denyInboundRelayReservation!(flooder)))
    expect(answers.filter(d => d === true)).toHaveLength(7)
    expect(await gate.gater.denyInboundRelayReservation!(honest)).toBe(false)
    const graylisted = peer()
    bad.add(graylisted.toString())
    expect(await gate.gater.denyOutboundRelayedConnection!(honest, graylisted)).toBe(true)
    expect(await gate.gater.denyOutboundRelayedConnection!(graylisted, honest)).toBe(true)
    expect(gate.refused()).toEqual({ rate: 7, penalised: 2 })
  })

  it('reserves relay slots and serves as a relay by the host\'s own addresses; bad settings are named', () => {
    const natted = { eth0: [{ address: '192.168.1.2', family: 'IPv4' as const, internal: false, netmask: '', mac: '', cidr: null }] }
    const publicHost = { eth0: [{ address: '11.0.0.10', family: 'IPv4' as const, internal: false, netmask: '', mac: '', cidr: null }] }
    expect(hostHasPublicAddress(['/ip4/0.0.0.0/tcp/4088'], natted)).toBe(false)
    expect(hostHasPublicAddress(['/ip4/0.0.0.0/tcp/4088'], publicHost)).toBe(true)
    expect(relaySlots({}, ['/ip4/127.0.0.1/tcp/0'])).toBe(0)
    expect(relaySlots({}, ['/ip4/192.168.1.2/tcp/4088'])).toBe(2)
    expect(relaySlots({}, ['/ip4/11.0.0.10/tcp/4088'])).toBe(0)
    expect(relayServing({}, ['/ip4/11.0.0.10/tcp/4088'])).toBe(true)
    expect(relayServing({}, ['/ip4/192.168.1.2/tcp/4088'])).toBe(false)
    expect(() => relaySlots({ relays: 17 }, [])).toThrow(/relays/)
    expect(() => relayLimits({ maxCircuitBytes: 0 })).toThrow(/relayLimits.maxCircuitBytes/)
  })
})
