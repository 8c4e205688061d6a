import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser } from 'playwright-core'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import type { P2PInit, P2PNode } from '../../src/node/p2p/index.js'
import { startNode } from '../p2p/helpers.js'
import { makeKeys, seedReleases, tempStore, testPolicy } from './fixtures.js'
import { browserAvailable, CHROMIUM } from '../helpers/browser.js'
import { waitFor } from '../node/helpers.js'

const available = browserAvailable('dashboard reachability')

// Real libp2p nodes on loopback: a relay, a node that holds a slot on it (relayed), and a
// third peer that reaches that node only through the relay. The dashboard of the relayed node
// says so, in a real browser.
describe.skipIf(!available)('the dashboard says how the node is reached', () => {
  const nodes: P2PNode[] = []
  let server: FeedServer
  let base: string
  let browser: Browser
  let cleanup: () => Promise<void>
  let relay: P2PNode
  let natted: P2PNode

  async function start (init: Partial<P2PInit>): Promise<P2PNode> {
    const { node } = await startNode({ init: { mdns: false, ...init } })
    nodes.push(node)
    return node
  }

  beforeAll(async () => {
    relay = await start({ nat: { relayServer: 'on', dht: false } })
    natted = await start({ bootstrap: [relay.multiaddrs()[0]!], nat: { relays: 1, dht: false } })
    const circuit = (): string | undefined => natted.stats().reachability.addresses.find(a => a.includes('/p2p-circuit/'))
    await waitFor('a relayed address', () => circuit() !== undefined, 15_000)
    const other = await start({ nat: { dht: false } })
    await other.backfill(circuit()!, 0, 1)
    await waitFor('the relayed peer connected', () => natted.peerList().some(p => p.peerId === other.peerId && p.relayed), 10_000)

    const keys = makeKeys()
    const t = await tempStore()
    cleanup = t.cleanup
    await seedReleases(t.store, keys)
    // What the daemon serves at /api/v1/peers (src/node/daemon/feed.ts), from the relayed node.
    const peers = (): unknown => {
      const { reachability, relayRefused, relayedBytes } = natted.stats()
      return { peerId: natted.peerId, ...reachability, relayRefused, relayedBytes, peers: natted.peerList() }
    }
    server = createFeedServer({ store: t.store, policy: testPolicy(keys), peers }, { host: '127.0.0.1', port: 0 })
    base = (await server.start()).url
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    await Promise.all(nodes.map(async n => { await n.stop() }))
    await cleanup?.()
  })

  it('names the relay a node behind a NAT is reached through and how many of its connections are direct', async () => {
    const body = await (await fetch(`${base}/api/v1/peers`)).json() as { mode: string, relays: string[], connections: { direct: number, relayed: number } }
    expect(body).toMatchObject({ mode: 'relayed', relays: [relay.peerId], connections: { direct: 1, relayed: 1 } })
    const page = await browser.newPage()
    await page.goto(`${base}/`)
    const line = page.locator('#reach')
    await line.waitFor()
    expect(await line.textContent()).toBe(`This node is relayed (through ${relay.peerId.slice(-8)}); 1 of 2 connections direct.`)
    await page.close()
  })
})
