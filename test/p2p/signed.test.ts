import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { KeyObject } from 'node:crypto'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { NekoError } from '../../src/protocol/errors.js'
import { TOPICS, peerIdOf } from '../../src/node/p2p/index.js'
import { digestOf, successClaim } from '../protocol/fixtures.js'
import { connect, sleep, startNode, TEST_HEARTBEAT_MS, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('gossip of signed claims, verified with the protocol', () => {
  // A star: hub 0 with leaves 1..4. Every node trusts builders 1..4 (not the outsider).
  let identities: SigningIdentity[] = []
  let nodes: TestNode[] = []
  const outsider = generateIdentity()
  const known: Array<Set<string>> = []

  beforeAll(async () => {
    identities = Array.from({ length: 5 }, () => generateIdentity())
    const keys = new Map<string, KeyObject>(identities.slice(1).map(i => [i.keyId, i.publicKey]))
    nodes = await Promise.all(identities.map(async (_, k) => {
      known[k] = new Set()
      const n = await startNode({
        privateKey: identities[k]!.privateKey,
        validate: (_topic, data) => {
          // Full verification; a thrown SignatureError/ValidationError becomes reject in the p2p layer,
          // but say it explicitly as the daemon does.
          let decoded
          try {
            decoded = decodeMessage(JSON.parse(Buffer.from(data).toString('utf8')), { keys })
          } catch (err) {
            if (err instanceof NekoError || err instanceof SyntaxError) return 'reject'
            throw err
          }
          if (known[k]!.has(decoded.id)) return 'ignore'
          known[k]!.add(decoded.id)
          return 'accept'
        }
      })
      return n
    }))
    await connect(nodes, [[1, 0], [2, 0], [3, 0], [4, 0]])
  })

  afterAll(async () => {
    await Promise.all(nodes.map(async n => { await n.node.stop() }))
  })

  it('a signed claim from one leaf reaches every node and decodes to the same claim', async () => {
    const claim = successClaim(digestOf('a'))
    const env = signClaim(claim, identities[1]!)
    const bytes = enc(JSON.stringify(env))
    await nodes[1]!.node.publish(TOPICS.claims, bytes)
    await waitFor('the claim everywhere', () => [0, 2, 3, 4].every(i => nodes[i]!.delivered.length === 1))
    for (const i of [0, 2, 3, 4]) {
      const got = nodes[i]!.delivered[0]!
      // Who delivered it: leaf 1 to the hub, the hub to the other leaves. The author is the envelope's signer.
      expect(got.from).toBe(nodes[i === 0 ? 1 : 0]!.node.peerId)
      const decoded = decodeMessage(JSON.parse(got.data), { allowEmbeddedKeys: true })
      expect(decoded.kind).toBe('claim')
      expect(decoded.keyId).toBe(identities[1]!.keyId)
      if (decoded.kind === 'claim') expect(decoded.claim.result?.manifestDigest).toBe(digestOf('a'))
    }
  })

  it('a tampered envelope, an untrusted signer and a re-encoded known envelope go nowhere', async () => {
    const env = signClaim(successClaim(digestOf('b')), identities[2]!)
    // Same signature over a different payload.
    const other = signClaim(successClaim(digestOf('c')), identities[2]!)
    const tampered = { ...env, payload: other.payload }
    await nodes[2]!.node.publish(TOPICS.claims, enc(JSON.stringify(tampered)))
    // Correctly signed, by a key nobody trusts.
    await nodes[3]!.node.publish(TOPICS.claims, enc(JSON.stringify(signClaim(successClaim(digestOf('d')), outsider))))
    // The first claim again, pretty-printed: new bytes (new message id), same envelope id.
    const first = nodes[0]!.delivered[0]!.data
    await nodes[4]!.node.publish(TOPICS.claims, enc(JSON.stringify(JSON.parse(first), null, 2)))
    await waitFor('the hub to judge all three', () => nodes[0]!.validated.length === 4)
    // A good claim after them arrives; the bad ones never did. (Leaves 2 and 3 are now
    // penalised at the hub and may be pruned from its mesh, so leaf 1 is the one to watch.)
    const good = enc(JSON.stringify(signClaim(successClaim(digestOf('e')), identities[4]!)))
    await nodes[4]!.node.publish(TOPICS.claims, good)
    await waitFor('the good claim at leaf 1', () => nodes[1]!.delivered.length === 1)
    expect(nodes[1]!.delivered[0]!.data).toBe(Buffer.from(good).toString())
    await sleep(TEST_HEARTBEAT_MS * 4)
    // The hub delivered the first claim and the good one: not the forged, untrusted or re-encoded ones.
    expect(nodes[0]!.delivered).toHaveLength(2)
    expect(nodes[1]!.delivered).toHaveLength(1)
    for (const i of [1, 2, 3, 4]) expect(nodes[i]!.delivered.map(d => JSON.parse(d.data).payload)).not.toContain(other.payload)
    // The hub penalised the senders of forged and untrusted claims, not of the known one.
    await waitFor('senders penalised', () => nodes[0]!.node.score(nodes[2]!.node.peerId) < 0 && nodes[0]!.node.score(nodes[3]!.node.peerId) < 0)
    expect(nodes[0]!.node.score(nodes[4]!.node.peerId)).toBeGreaterThanOrEqual(0)
  })

  it('gossip authorship and the signing key are one identity', () => {
    for (const [k, n] of nodes.entries()) expect(n.node.peerId).toBe(peerIdOf(identities[k]!.publicKey))
  })
})
