import { describe, expect, it } from 'vitest'
import { judge, type JudgedClaim } from '../../src/node/consensus/evaluate.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { targetKey } from '../../src/protocol/target.js'
import type { Claim } from '../../src/protocol/types.js'
import { announcement, digestOf, failureClaim, fixedIdentity, makePolicy, successClaim, target } from '../protocol/fixtures.js'

const D1 = digestOf('d1')
const D2 = digestOf('d2')
const { policy, builders } = makePolicy(3, { threshold: 2 })
const [x0, x1, x2] = builders as [SigningIdentity, SigningIdentity, SigningIdentity]
const stranger = fixedIdentity(90)

function verified (identity: SigningIdentity, claim: Claim, receivedAt?: string): JudgedClaim {
  const d = decodeMessage(signClaim(claim, identity), { allowEmbeddedKeys: true })
  if (d.kind !== 'claim') throw new Error('not a claim')
  return { claim: d.claim, keyId: d.keyId, id: d.id, ...(receivedAt !== undefined ? { receivedAt } : {}) }
}

describe('judge', () => {
  const amd = target()
  const arm = target({ platform: 'linux/arm64' })
  const other = target({ variant: 'extra' })
  const claims = [
    verified(x0, successClaim(D1, amd), '2026-01-01T10:00:00+02:00'),
    verified(x1, successClaim(D1, amd), '2026-01-01T09:30:00Z'),
    verified(x2, successClaim(D2, amd), '2026-01-01T09:00:00Z'),
    verified(stranger, successClaim(D2, amd)),
    verified(stranger, successClaim(D2, { ...amd, tag: 'v3.0.1' })),
    verified(x0, failureClaim(undefined, arm)),
    verified(x1, successClaim(D1, other))
  ]

  it('summarises each target\'s claims: the ones the verdict names, one untrusted claim per key and outcome, the newest arrival in time', () => {
    const { verdicts, targets } = judge({ policy, announcements: [announcement()], claims: [...claims].reverse() })
    // Announced targets only, in announcement order.
    expect(verdicts.map(v => v.key)).toEqual([targetKey(amd), targetKey(arm)])
    const t = targets[0]!
    expect(t.status).toBe('unreproducible')
    const agreeing = [claims[0]!, claims[1]!].sort((a, b) => a.keyId < b.keyId ? -1 : 1)
    expect(t.agreeing.map(a => [a.claimId, a.operator, a.digest])).toEqual(agreeing.map(c => [c.id, policy.builderById.get(c.keyId)?.operator, D1]))
    expect(t.dissenting.map(d => [d.claimId, d.digest])).toEqual([[claims[2]!.id, D2]])
    // The stranger's two claims for one digest (two tags) are one outcome: the smaller id is shown.
    expect(t.untrusted.map(u => u.claimId)).toEqual([[claims[3]!.id, claims[4]!.id].sort()[0]])
    // 09:30Z is later than 10:00+02:00 (08:00Z), though it sorts before it as text.
    expect(t.lastClaimAt).toBe('2026-01-01T09:30:00Z')
    const a = targets[1]!
    expect(a.failed.map(f => [f.claimId, f.failure?.class])).toEqual([[claims[5]!.id, 'build-failed']])
    expect(a.lastClaimAt).toBe(claims[5]!.claim.finishedOn)
  })

  it('judges the targets only claims name after the announced ones when asked, and no claim of theirs leaks into another target', () => {
    const { verdicts, targets } = judge({ policy, announcements: [announcement()], claims, claimedTargets: true })
    expect(verdicts.map(v => v.key)).toEqual([targetKey(amd), targetKey(arm), targetKey(other)])
    expect(targets[2]?.agreeing.map(a => a.claimId)).toEqual([claims[6]!.id])
    expect(targets[2]?.status).toBe('pending')
    expect(targets[0]?.agreeing.map(a => a.claimId)).not.toContain(claims[6]!.id)
  })
})
