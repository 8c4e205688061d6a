import { generateKeyPairSync } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/protocol/errors.js'
import { createP2PNode, TOPICS, type P2PNode, type Topic } from '../../src/node/p2p/index.js'
import { LOOPBACK, TEST_HEARTBEAT_MS, sleep, waitFor } from './helpers.js'

const backfillSource = async ({ cursor }: { cursor: number }): Promise<{ items: Uint8Array[], next: number }> => ({ items: [], next: cursor })

describe('topic handlers registered with the p2p node', () => {
  const nodes: P2PNode[] = []
  afterAll(async () => { for (const n of nodes) await n.stop() })

  it('hand each accepted message to its topic\'s handler with the value its check made; throttled messages go to the hook', async () => {
    const sender = await createP2PNode({ privateKey: generateKeyPairSync('ed25519').privateKey, backfillSource }, { listen: [LOOPBACK], gossip: { heartbeatIntervalMs: TEST_HEARTBEAT_MS } })
    // Three messages from one peer at once, then nothing for a long time.
    const receiver = await createP2PNode({ privateKey: generateKeyPairSync('ed25519').privateKey, backfillSource }, { listen: [LOOPBACK], gossip: { heartbeatIntervalMs: TEST_HEARTBEAT_MS, peerRate: { perSecond: 0.001, burst: 3 } } })
    nodes.push(sender, receiver)
    const delivered: Array<{ n: number, half: number, from: string }> = []
    const throttled: string[] = []
    receiver.handle<{ n: number, half: number }>(TOPICS.claims, {
      validate (data) {
        const n = Number(Buffer.from(data).toString())
        return n % 2 === 0 ? { outcome: 'accept', value: { n, half: n / 2 } } : { outcome: 'ignore' }
      },
      deliver (value, data, from) {
        expect(Number(Buffer.from(data).toString())).toBe(value.n)
        delivered.push({ ...value, from })
      },
      throttled: (from) => { throttled.push(from) }
    })
    expect(() => { receiver.handle('/neko-rebuilder/nothing/1' as Topic, { validate: () => ({ outcome: 'ignore' }), deliver: () => {} }) }).toThrow(ValidationError)
    await sender.start()
    await receiver.start()
    await sender.dial(receiver.multiaddrs()[0]!)
    await waitFor('a mesh', () => receiver.stats().mesh[TOPICS.claims] === 1 && sender.stats().mesh[TOPICS.claims] === 1)

    for (const n of [2, 3, 4, 6, 8]) await sender.publish(TOPICS.claims, Buffer.from(String(n)))
    await waitFor('two deliveries and two throttled', () => delivered.length === 2 && throttled.length === 2)
    expect(delivered).toEqual([{ n: 2, half: 1, from: sender.peerId }, { n: 4, half: 2, from: sender.peerId }])
    expect(throttled).toEqual([sender.peerId, sender.peerId])
    expect(receiver.stats().gossip).toEqual({ accepted: 2, rejected: 0, ignored: 1 })

    // A topic with neither a handler nor callbacks ignores everything (and the rate is spent).
    await sender.publish(TOPICS.capabilities, Buffer.from('10'))
    await sleep(300)
    expect(delivered).toHaveLength(2)
  })
})
