import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createP2PNode, type P2PInit, type P2PNode } from '../../src/node/p2p/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import type { KeyObject } from 'node:crypto'
import { LOOPBACK, waitFor } from '../node/helpers.js'

const nodes: P2PNode[] = []
const dirs: string[] = []
afterEach(async () => {
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
  it('a node whose only bootstrap peer is gone finds the network again through the peers it stored', async () => {
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

    a = await start(init, key)
    await waitFor('a reconnected to a peer it stored', () => a.connectedPeers().includes(other.peerId), 15_000)
    expect(a.connectedPeers()).not.toContain(bootstrapNode.peerId)
  }, 40_000)

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
