import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { createP2PNode, TOPICS } from '../../src/node/p2p/index.js'
import type { P2PComponents, P2PInit, P2PNode, ValidationOutcome } from '../../src/node/p2p/index.js'

export const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
/** Short heartbeat so meshes form and repair within a test. */
export const TEST_HEARTBEAT_MS = 100

export interface Delivery { topic: string, data: string, from: string }

export interface TestNode {
  node: P2PNode
  privateKey: KeyObject
  publicKey: KeyObject
  /** What onMessage received, in order. */
  delivered: Delivery[]
  /** What the validator was asked about, in order. */
  validated: Delivery[]
}

export type Policy = (topic: string, data: Uint8Array, from: string) => Promise<ValidationOutcome> | ValidationOutcome

export async function startNode (opts: { privateKey?: KeyObject, validate?: Policy, backfillSource?: P2PComponents['backfillSource'], init?: Partial<P2PInit> } = {}): Promise<TestNode> {
  const { privateKey, publicKey } = opts.privateKey != null
    ? { privateKey: opts.privateKey, publicKey: createPublicKey(opts.privateKey) }
    : generateKeyPairSync('ed25519')
  const delivered: Delivery[] = []
  const validated: Delivery[] = []
  const policy = opts.validate ?? (() => 'accept' as const)
  const node = await createP2PNode({
    privateKey,
    validate: async (topic, data, from) => {
      validated.push({ topic, data: Buffer.from(data).toString(), from })
      return policy(topic, data, from)
    },
    onMessage: (topic, data, from) => { delivered.push({ topic, data: Buffer.from(data).toString(), from }) },
    backfillSource: opts.backfillSource ?? (async ({ cursor }) => ({ items: [], next: cursor }))
  }, {
    listen: [LOOPBACK],
    ...opts.init,
    gossip: { heartbeatIntervalMs: TEST_HEARTBEAT_MS, ...opts.init?.gossip }
  })
  await node.start()
  return { node, privateKey, publicKey, delivered, validated }
}

export async function waitFor (what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Dials each edge [i, j] (i dials j) and waits until every node's claims mesh holds all its neighbours. */
export async function connect (nodes: TestNode[], edges: Array<[number, number]>): Promise<void> {
  for (const [i, j] of edges) await nodes[i]!.node.dial(nodes[j]!.node.multiaddrs()[0]!)
  const degree = nodes.map((_, k) => edges.filter(([i, j]) => i === k || j === k).length)
  await waitFor('gossip meshes', () => nodes.every((n, k) =>
    Object.values(TOPICS).every(t => n.node.stats().mesh[t]! >= Math.min(degree[k]!, 4))
  ), 15_000)
}

export function count (n: TestNode, data: string): number {
  return n.delivered.filter(d => d.data === data).length
}

/** A bare libp2p node (TCP, Noise, Yamux) for playing a peer that breaks the rules. */
export async function startRawNode (): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
}
