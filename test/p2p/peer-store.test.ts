import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createP2PNode, type P2PInit, type P2PNode } from '../../src/node/p2p/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import type { KeyObject } from 'node:crypto'
import { LOOPBACK, waitFor } from '../node/helpers.js'

const nodes: P2PNode[] = []
const dirs: string[] = []
afterEach(async () => {
  vi.restoreAllMocks()
  await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

async function start (init: Partial<P2PInit> = {}, privateKey: KeyObject = generateIdentity().privateKey): Promise<P2PNode> {
  const node = await createP2PNode({
    privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    backfillSource: async ({ cursor }) => ({ items: [], next: cursor })
  }, { listen: [LOOPBACK], mdns: false, ...init })
  await node.start()
  nodes.push(node)
  return node
}

describe('peers kept across restarts', () => {
  // libp2p's peer store forgets an address an hour after it was learnt: a node off overnight
  // would come back knowing nobody.
  it.each([['at once', 0], ['a day later', 24 * 3600_000]])('a node whose only bootstrap peer is gone finds the network again through the peers it stored, restarted %s', async (_, laterMs) => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-peers-'))
    dirs.push(dir)
    const bootstrapNode = await start()
    const other = await start()
    const key = generateIdentity().privateKey
    const init = { bootstrap: [bootstrapNode.multiaddrs()[0]!], peerStorePath: join(dir, 'peers') }
    let a = await start(init, key)
    await waitFor('a connected to its bootstrap peer', () => a.connectedPeers().includes(bootstrapNode.peerId), 10_000)
    // The other peer dials in: `a` keeps it only as a peer seen (no keep-alive tag of its own),
    // and `a` comes back on a new port, so only `a` can restore the connection.
    await other.dial(a.multiaddrs()[0]!)
    await waitFor('a identified the other peer', () => a.connectedPeers().includes(other.peerId), 10_000)
    await new Promise(resolve => setTimeout(resolve, 500))
    await a.stop()
    nodes.splice(nodes.indexOf(a), 1)
    await bootstrapNode.stop()
    nodes.splice(nodes.indexOf(bootstrapNode), 1)

    const now = Date.now.bind(Date)
    if (laterMs > 0) vi.spyOn(Date, 'now').mockImplementation(() => now() + laterMs)
    a = await start(init, key)
    await waitFor('a reconnected to a peer it stored', () => a.connectedPeers().includes(other.peerId), 15_000)
    expect(a.connectedPeers()).not.toContain(bootstrapNode.peerId)
  }, 40_000)

  it('keeps at most maxKnownPeers, forgetting those seen least recently', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-peers-'))
    dirs.push(dir)
    // No DHT: the others' redials of `a` (they dialled it, so they keep it) find no new address.
    const others = [await start({ nat: { dht: false } }), await start({ nat: { dht: false } }), await start({ nat: { dht: false } }), await start({ nat: { dht: false } })]
    const key = generateIdentity().privateKey
    const init = { peerStorePath: join(dir, 'peers'), nat: { dht: false } }
    let a = await start(init, key)
    // Identified in this order, so the last two are the most recently seen.
    for (const o of others) {
      await o.dial(a.multiaddrs()[0]!)
      await waitFor('a identified the peer', () => a.connectedPeers().includes(o.peerId), 10_000)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    await new Promise(resolve => setTimeout(resolve, 500))
    const restart = async (more: Partial<P2PInit>): Promise<void> => {
      await a.stop()
      nodes.splice(nodes.indexOf(a), 1)
      a = await start({ ...init, ...more }, key)
    }
    await restart({ maxKnownPeers: 2 })
    await waitFor('a reconnected to the two it kept', () => a.connectedPeers().length === 2, 15_000)
    // Started again with room for more: only the two kept are left to dial.
    await restart({})
    await waitFor('a reconnected', () => a.connectedPeers().length === 2, 15_000)
    await new Promise(resolve => setTimeout(resolve, 1_000))
    expect(a.connectedPeers().sort()).toEqual(others.slice(2).map(o => o.peerId).sort())
    await expect(start({ maxKnownPeers: 0 })).rejects.toThrow(/maxKnownPeers/)
  }, 60_000)

  it('without a peer store path nothing is kept', async () => {
    const bootstrapNode = await start()
    const other = await start()
    const key = generateIdentity().privateKey
    let a = await start({ bootstrap: [bootstrapNode.multiaddrs()[0]!] }, key)
    await a.dial(other.multiaddrs()[0]!)
    await a.stop()
    nodes.splice(nodes.indexOf(a), 1)
    await bootstrapNode.stop()
    nodes.splice(nodes.indexOf(bootstrapNode), 1)
    a = await start({}, key)
    await new Promise(resolve => setTimeout(resolve, 2_000))
    expect(a.connectedPeers()).toEqual([])
  }, 40_000)
})
