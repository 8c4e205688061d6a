import { describe, expect, it } from 'vitest'
import { createLogger } from '../../src/node/logger.js'
import { checkedGossip, checkedTopic, type CheckedGossipInit, type GossipRefusal } from '../../src/node/p2p/checked-gossip.js'
import type { TrustPolicy } from '../../src/protocol/policy.js'
import { makeKeys, testPolicy } from '../http/fixtures.js'

const log = createLogger({ level: 'silent' }).forComponent('checked-gossip')
const keys = makeKeys()
const builder = keys.builders[0]!.keyId
const stranger = keys.stranger.keyId

/** A statement as these tests send it: its "signature" is the key id it names; `bad` fails verification. */
const data = (v: { keyId: string, n: number, bad?: boolean }): Uint8Array => Buffer.from(JSON.stringify(v))

function topic (opts: { policy?: () => TrustPolicy, refuse?: CheckedGossipInit<number, string>['refuse'], store?: CheckedGossipInit<number, string>['store'], perSignerPerMinute?: number } = {}) {
  const stored: string[] = []
  const gossip = checkedGossip<number, string>({ policy: opts.policy ?? (() => testPolicy(keys)), log }, {
    what: ['note', 'notes'],
    maxBytes: 200,
    perSignerPerMinute: opts.perSignerPerMinute ?? 600,
    verify: (text) => {
      const v = JSON.parse(text) as { keyId: string, n: number, bad?: boolean }
      if (v.bad === true) throw Object.assign(new Error('signature does not verify'), { name: 'SignatureError' })
      return { keyId: v.keyId, value: v.n }
    },
    refuse: opts.refuse ?? (async () => undefined),
    store: opts.store ?? (async (_data, keyId, n) => { stored.push(`${keyId}:${n}`); return `${keyId}:${n}` })
  })
  return { gossip, stored }
}

describe('checked gossip: the check-and-receive piece of every topic of signed statements', () => {
  it('checks size, signature and signer in order, and refuses with the reason', async () => {
    const { gossip } = topic()
    expect(await gossip.check(new Uint8Array(201))).toEqual({ verdict: 'reject', reason: 'note of 201 bytes exceeds 200' })
    expect(await gossip.check(data({ keyId: builder, n: 1, bad: true }))).toEqual({ verdict: 'reject', reason: 'SignatureError: signature does not verify' })
    expect(await gossip.check(data({ keyId: stranger, n: 1 }))).toMatchObject({ verdict: 'ignore', keyId: stranger, reason: expect.stringMatching(/not a builder of the policy/) as unknown })
    expect(await gossip.check(data({ keyId: builder, n: 1 }))).toEqual({ verdict: 'accept', keyId: builder, value: 1 })
  })

  it('passes the topic\'s own refusal on; a store that fails ignores the message and charges its signer nothing', async () => {
    let failing = true
    const refusal: GossipRefusal = { verdict: 'ignore', keyId: builder, reason: 'already stored' }
    const { gossip } = topic({
      perSignerPerMinute: 4,
      refuse: async (_keyId, n) => {
        if (failing) throw new Error('store closed')
        return n === 2 ? refusal : undefined
      }
    })
    expect(await gossip.check(data({ keyId: builder, n: 1 }))).toEqual({ verdict: 'ignore', reason: 'store unavailable' })
    failing = false
    expect(await gossip.check(data({ keyId: builder, n: 2 }))).toEqual(refusal)
    // A burst of one (4 a minute): the failed and refused checks above took none of it.
    expect((await gossip.check(data({ keyId: builder, n: 3 }))).verdict).toBe('accept')
    expect(await gossip.check(data({ keyId: builder, n: 4 }))).toEqual({ verdict: 'ignore', keyId: builder, reason: `signer ${builder} over its rate of 4 notes a minute` })
  })

  it('never throws from a check: an unexpected error rejects the message', async () => {
    const { gossip } = topic({ policy: () => { throw new Error('policy file vanished') } })
    expect(await gossip.check(data({ keyId: builder, n: 1 }))).toEqual({ verdict: 'reject', reason: 'validator error' })
  })

  it('stores only what a check accepted, checking again when not handed the check', async () => {
    const { gossip, stored } = topic()
    expect(await gossip.receive(data({ keyId: stranger, n: 1 }))).toBeUndefined()
    expect(await gossip.receive(data({ keyId: builder, n: 1 }), { verdict: 'ignore', reason: 'already stored' })).toBeUndefined()
    expect(await gossip.receive(data({ keyId: builder, n: 2 }))).toBe(`${builder}:2`)
    const checked = await gossip.check(data({ keyId: builder, n: 3 }))
    expect(await gossip.receive(data({ keyId: builder, n: 3 }), checked)).toBe(`${builder}:3`)
    expect(stored).toEqual([`${builder}:2`, `${builder}:3`])
  })

  it('as a topic handler: accepted checks are delivered to the store, whose failure is logged, not thrown', async () => {
    const { gossip } = topic({ store: async () => { throw new Error('disk full') } })
    const handler = checkedTopic({ gossip, log }, 'note')
    expect(await handler.validate(data({ keyId: stranger, n: 1 }), 'peer')).toEqual({ outcome: 'ignore' })
    expect(await handler.validate(new Uint8Array(300), 'peer')).toEqual({ outcome: 'reject' })
    const accepted = await handler.validate(data({ keyId: builder, n: 1 }), 'peer')
    expect(accepted).toEqual({ outcome: 'accept', value: { verdict: 'accept', keyId: builder, value: 1 } })
    if (accepted.outcome !== 'accept') throw new Error('not accepted')
    await expect(handler.deliver(accepted.value, data({ keyId: builder, n: 1 }), 'peer')).resolves.toBeUndefined()
  })
})
