import { createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { publishOnce } from '../../src/cli/publish-once.js'
import { createP2PNode, type P2PNode } from '../../src/node/p2p/index.js'
import { peerIdOf } from '../../src/node/p2p/identity.js'
import { generateIdentity } from '../../src/protocol/keys.js'

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(err => err != null ? reject(err) : resolve(port))
    })
  })
}

describe('publishOnce (announce --to)', () => {
  let node: P2PNode | undefined
  afterEach(async () => { await node?.stop() })

  it('keeps dialling a node that is still starting, and delivers once it listens', async () => {
    const identity = generateIdentity()
    const port = await freePort()
    const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdOf(identity.privateKey)}`
    const received: Uint8Array[] = []
    // Nothing listens on the port yet: the first dials are refused.
    const sending = publishOnce(Buffer.from('{"hello":1}'), { to: [addr], timeoutMs: 20_000, heartbeatIntervalMs: 100 })
    await new Promise(resolve => setTimeout(resolve, 1500))
    node = await createP2PNode({
      privateKey: identity.privateKey,
      validate: () => 'accept',
      onMessage: (_topic, data) => { received.push(data) },
      backfillSource: async ({ cursor }) => ({ items: [], next: cursor })
    }, { listen: [`/ip4/127.0.0.1/tcp/${port}`], mdns: false, gossip: { heartbeatIntervalMs: 100 } })
    await node.start()
    const sent = await sending
    expect(sent.recipients).toBe(1)
    expect(sent.peers).toContain(peerIdOf(identity.privateKey))
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 100))
    expect(Buffer.from(received[0] ?? []).toString()).toBe('{"hello":1}')
  })

  it('gives up with NotDeliveredError when nobody answers within the time allowed', async () => {
    const port = await freePort()
    const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerIdOf(generateIdentity().privateKey)}`
    const started = Date.now()
    await expect(publishOnce(Buffer.from('{}'), { to: [addr], timeoutMs: 1500 })).rejects.toMatchObject({ name: 'NotDeliveredError' })
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500)
  })
})
