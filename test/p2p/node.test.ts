import { afterEach, describe, expect, it } from 'vitest'
import { generateKeyPairSync, sign } from 'node:crypto'
import { createServer } from 'node:net'
import { ValidationError } from '../../src/protocol/errors.js'
import { createP2PNode, DialError, IdentityKeyError, PublishError, TOPICS, libp2pKeyFromIdentity, peerIdOf } from '../../src/node/p2p/index.js'
import type { P2PNode } from '../../src/node/p2p/index.js'
import { LOOPBACK, startNode, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return port
}

const noop = {
  validate: () => 'accept' as const,
  onMessage: () => {},
  backfillSource: async ({ cursor }: { cursor: number }) => ({ items: [], next: cursor })
}

describe('p2p node', () => {
  const started: Array<TestNode | P2PNode> = []
  afterEach(async () => {
    await Promise.all(started.splice(0).map(async n => { await ('node' in n ? n.node : n).stop() }))
  })

  it('uses the Ed25519 signing key as the libp2p key: same public key, same signatures', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const key = libp2pKeyFromIdentity(privateKey)
    const msg = new TextEncoder().encode('claim bytes')
    expect(Buffer.from(await key.sign(msg))).toEqual(sign(null, msg, privateKey))
    expect(peerIdOf(privateKey)).toBe(peerIdOf(publicKey))
    expect(Buffer.from(key.publicKey.raw).toString('base64url')).toBe(publicKey.export({ format: 'jwk' }).x)
  })

  it('refuses keys that are not Ed25519 private keys', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    expect(() => libp2pKeyFromIdentity(ec.privateKey)).toThrow(IdentityKeyError)
    const ed = generateKeyPairSync('ed25519')
    expect(() => libp2pKeyFromIdentity(ed.publicKey)).toThrow(IdentityKeyError)
    await expect(createP2PNode({ ...noop, privateKey: ec.privateKey }, { listen: [LOOPBACK] })).rejects.toThrow(IdentityKeyError)
  })

  it('validates its init: multiaddrs and back-fill limits name the bad field', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    await expect(createP2PNode({ ...noop, privateKey }, { listen: ['not-an-addr'] })).rejects.toThrow(/listen/)
    await expect(createP2PNode({ ...noop, privateKey }, { listen: [LOOPBACK], bootstrap: ['nope'] })).rejects.toThrow(/bootstrap/)
    await expect(createP2PNode({ ...noop, privateKey }, { listen: [LOOPBACK], backfill: { maxItems: 0 } })).rejects.toThrow(/backfill.maxItems/)
  })

  it('publishing before start is refused; a lone started node may publish to nobody', async () => {
    const { privateKey } = generateKeyPairSync('ed25519')
    const node = await createP2PNode({ ...noop, privateKey }, { listen: [LOOPBACK] })
    await expect(node.publish(TOPICS.claims, new Uint8Array(1))).rejects.toBeInstanceOf(PublishError)
    await node.start()
    started.push(node)
    expect(await node.publish(TOPICS.claims, new Uint8Array(1))).toEqual({ recipients: 0 })
  })

  it('connects to its bootstrap peers on start and reports peers through onPeer', async () => {
    const seed = await startNode()
    started.push(seed)
    const events: Array<[string, string]> = []
    seed.node.onPeer((event, peer) => { events.push([event, peer]) })
    const joiner = await startNode({ init: { bootstrap: [seed.node.multiaddrs()[0]!] } })
    started.push(joiner)
    await waitFor('bootstrap connection', () => joiner.node.connectedPeers().includes(seed.node.peerId))
    await waitFor('connect event', () => events.some(([e, p]) => e === 'connect' && p === joiner.node.peerId))
    await waitFor('subscriptions exchanged', () => seed.node.stats().topics[TOPICS.claims] === 1)
    await joiner.node.stop()
    started.splice(started.indexOf(joiner), 1)
    await waitFor('disconnect event', () => events.some(([e, p]) => e === 'disconnect' && p === joiner.node.peerId))
  })

  it('dial errors are typed: a bad multiaddr is a ValidationError, an unreachable peer a DialError', async () => {
    const a = await startNode()
    started.push(a)
    await expect(a.node.dial('garbage')).rejects.toBeInstanceOf(ValidationError)
    const gone = await startNode()
    const addr = gone.node.multiaddrs()[0]!
    await gone.node.stop()
    await expect(a.node.dial(addr)).rejects.toBeInstanceOf(DialError)
  })

  it('redials a dialled peer whose connection dropped (the peer restarted on the same address)', async () => {
    const port = await freePort()
    const a = await startNode()
    started.push(a)
    const b = await startNode({ init: { listen: [`/ip4/127.0.0.1/tcp/${port}`] } })
    await a.node.dial(b.node.multiaddrs()[0]!)
    await b.node.stop()
    await waitFor('A to notice', () => !a.node.connectedPeers().includes(b.node.peerId))
    // Same key, same address: libp2p's keep-alive redial finds it again without help.
    const b2 = await startNode({ privateKey: b.privateKey, init: { listen: [`/ip4/127.0.0.1/tcp/${port}`] } })
    started.push(b2)
    expect(b2.node.peerId).toBe(b.node.peerId)
    await waitFor('A to reconnect', () => a.node.connectedPeers().includes(b.node.peerId), 20_000)
  })

  it('caps connections at maxConnections', async () => {
    const hub = await startNode({ init: { maxConnections: 2 } })
    started.push(hub)
    const leaves = await Promise.all([0, 1, 2, 3].map(async () => startNode()))
    started.push(...leaves)
    // Simultaneous dials: all may complete their handshakes before any is counted.
    await Promise.allSettled(leaves.map(async l => { await l.node.dial(hub.node.multiaddrs()[0]!) }))
    await waitFor('hub at its cap', () => hub.node.connectedPeers().length === 2)
    // Later dials are refused or closed too.
    const late = await startNode()
    started.push(late)
    await late.node.dial(hub.node.multiaddrs()[0]!).catch(() => {})
    await waitFor('late peer turned away', () => !hub.node.connectedPeers().includes(late.node.peerId))
    expect(hub.node.connectedPeers()).toHaveLength(2)
  })
})
