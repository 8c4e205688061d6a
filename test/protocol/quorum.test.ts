import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { parsePolicy, type TrustPolicy } from '../../src/protocol/policy.js'
import { computeVerdicts, groupByTarget, verdictsOfGroups, type TargetVerdict, type VerifiedClaim } from '../../src/protocol/quorum.js'
import { targetKey } from '../../src/protocol/target.js'
import type { Claim, Target } from '../../src/protocol/types.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { digestOf, failureClaim, fixedIdentity, makePolicy, successClaim, target } from './fixtures.js'

const D1 = digestOf('d1')
const D2 = digestOf('d2')
const D3 = digestOf('d3')

/** A claim as the network hands it over: signed, then decoded and verified. */
function verified (identity: SigningIdentity, claim: Claim): VerifiedClaim {
  const d = decodeMessage(signClaim(claim, identity), { allowEmbeddedKeys: true })
  if (d.kind !== 'claim') throw new Error('not a claim')
  return { claim: d.claim, keyId: d.keyId, id: d.id }
}
const ok = (id: SigningIdentity, digest: string, t?: Target): VerifiedClaim => verified(id, successClaim(digest, t))
const fail = (id: SigningIdentity): VerifiedClaim => verified(id, failureClaim())

function only (policy: TrustPolicy, claims: VerifiedClaim[], published?: Map<string, string>): TargetVerdict {
  const vs = computeVerdicts({ claims, policy, published })
  expect(vs).toHaveLength(1)
  return vs[0] as TargetVerdict
}

describe('computeVerdicts', () => {
  const { policy, builders } = makePolicy(3, { threshold: 2 })
  const [x0, x1, x2] = builders as [SigningIdentity, SigningIdentity, SigningIdentity]

  it('reproducible: k trusted builders agree', () => {
    const v = only(policy, [ok(x0, D1), ok(x1, D1)])
    expect(v.status).toBe('reproducible')
    expect(v.consensusDigest).toBe(D1)
    expect(v.agreeing.map(a => a.name).sort()).toEqual(['b0', 'b1'])
    expect(v.agreeing.map(a => a.keyId)).toEqual([x0.keyId, x1.keyId].sort())
    expect(v.operators).toEqual(['op0', 'op1'])
    expect(v.trustedCount).toBe(2)
    expect(v.outstanding).toBe(1)
    expect(v.key).toBe(targetKey(target()))
  })

  it('pending: fewer than k votes and builders outstanding', () => {
    const v = only(policy, [ok(x0, D1)])
    expect(v.status).toBe('pending')
    expect(v.consensusDigest).toBeUndefined()
    expect(v.leadingDigest).toBe(D1)
  })

  it('unreproducible: different digests and no digest can still reach k', () => {
    const v = only(policy, [ok(x0, D1), ok(x1, D2), ok(x2, D3)])
    expect(v.status).toBe('unreproducible')
    expect(v.dissenting).toHaveLength(2)
  })

  it('unreproducible: a digest has k but dissent exceeds allowedDissent; reproducible when allowed', () => {
    const claims = [ok(x0, D1), ok(x1, D1), ok(x2, D2)]
    expect(only(policy, claims).status).toBe('unreproducible')
    const lenient = makePolicy(3, { threshold: 2, allowedDissent: 1 }).policy
    const v = only(lenient, claims)
    expect(v.status).toBe('reproducible')
    expect(v.dissenting.map(d => [d.name, d.digest])).toEqual([['b2', D2]])
  })

  it('disputed: two digests have support and either could still settle', () => {
    const p = makePolicy(5, { threshold: 2, allowedDissent: 1 })
    const v = only(p.policy, [ok(p.builders[0] as SigningIdentity, D1), ok(p.builders[1] as SigningIdentity, D2)])
    expect(v.status).toBe('disputed')
    // With no dissent allowed the same two votes already rule out a quorum.
    const strict = makePolicy(5, { threshold: 2 })
    expect(only(strict.policy, [ok(strict.builders[0] as SigningIdentity, D1), ok(strict.builders[1] as SigningIdentity, D2)]).status).toBe('unreproducible')
  })

  it('failed: every trusted builder answered with a failure', () => {
    expect(only(policy, [fail(x0), fail(x1)]).status).toBe('pending')
    const v = only(policy, [fail(x0), fail(x1), fail(x2)])
    expect(v.status).toBe('failed')
    expect(v.failed).toHaveLength(3)
    expect(v.failed[0]?.failure.class).toBe('build-failed')
  })

  it('infrastructure errors answer nothing: the builder stays outstanding and the target never fails on them', () => {
    const infra = (id: SigningIdentity): VerifiedClaim => verified(id, { ...failureClaim(), failure: { class: 'infrastructure-error', message: 'failed to create endpoint: adding interface to bridge docker0 failed: Device does not exist' } })
    const all = only(policy, [infra(x0), infra(x1), infra(x2)])
    expect(all.status).toBe('pending')
    expect(all.outstanding).toBe(3)
    expect(all.trustedCount).toBe(0)
    expect(all.failed).toEqual([])
    // With one honest vote the infrastructure fault of another builder leaves it waited for.
    const mixed = only(policy, [ok(x0, D1), infra(x1)])
    expect(mixed.status).toBe('pending')
    expect(mixed.outstanding).toBe(2)
    expect(only(policy, [ok(x0, D1), infra(x1), ok(x1, D1)]).status).toBe('reproducible')
    // A real build failure still answers.
    expect(only(policy, [fail(x0), fail(x1), infra(x2)]).status).toBe('pending')
    expect(only(policy, [fail(x0), fail(x1), fail(x2)]).status).toBe('failed')
  })

  it('unsettled: every trusted builder answered and no digest can settle', () => {
    const v = only(policy, [ok(x0, D1), fail(x1), fail(x2)])
    expect(v.status).toBe('unsettled')
    expect(v.reason).toBe('3 of 3 answered from 1 engine, 2 failed; threshold 2')
    // Still a builder to wait for: pending.
    expect(only(policy, [ok(x0, D1), fail(x1)]).status).toBe('pending')
  })

  it('a failure is evidence, not a vote', () => {
    const v = only(policy, [ok(x0, D1), fail(x1)])
    expect(v.status).toBe('pending')
    expect(v.agreeing).toHaveLength(1)
    expect(v.dissenting).toHaveLength(0)
    expect(v.failed.map(f => f.name)).toEqual(['b1'])
    // A later success from the same key counts as its vote.
    expect(only(policy, [ok(x0, D1), fail(x1), ok(x1, D1)]).status).toBe('reproducible')
  })

  it('equivocation: a key that signed two digests is excluded and flagged', () => {
    const v = only(policy, [ok(x0, D1), ok(x0, D2), ok(x1, D1)])
    expect(v.status).toBe('pending')
    expect(v.equivocating).toEqual([{ keyId: x0.keyId, name: 'b0', digests: [D1, D2].sort() }])
    expect(v.agreeing.map(a => a.keyId)).toEqual([x1.keyId])
    expect(only(policy, [ok(x0, D1), ok(x0, D2), ok(x1, D1), ok(x2, D1)]).status).toBe('reproducible')
  })

  it('duplicates: one key, one vote', () => {
    const again = verified(x0, { ...successClaim(D1), startedOn: '2026-01-01T00:01:00Z' })
    const v = only(policy, [ok(x0, D1), again, ok(x0, D1)])
    expect(v.status).toBe('pending')
    expect(v.agreeing).toHaveLength(1)
  })

  it('untrusted claims are shown, never counted', () => {
    const strangers = [fixedIdentity(90), fixedIdentity(91), fixedIdentity(92)]
    const v = only(policy, [ok(x0, D1), ...strangers.map(s => ok(s, D1)), verified(strangers[0] as SigningIdentity, failureClaim())])
    expect(v.status).toBe('pending')
    expect(v.untrusted).toHaveLength(4)
    expect(v.untrusted.filter(u => u.failureClass === 'build-failed')).toHaveLength(1)
  })

  it('minOperators: agreeing builders of one operator are not enough', () => {
    // b0 and b2 are both run by op0.
    const p = makePolicy(3, { threshold: 2, minOperators: 2, operators: 2 })
    const [y0, y1, y2] = p.builders as [SigningIdentity, SigningIdentity, SigningIdentity]
    const v = only(p.policy, [ok(y0 as SigningIdentity, D1), ok(y2 as SigningIdentity, D1)])
    expect(v.status).toBe('pending')
    expect(v.operators).toEqual(['op0'])
    expect(only(p.policy, [ok(y0 as SigningIdentity, D1), ok(y2 as SigningIdentity, D1), ok(y1 as SigningIdentity, D1)]).status).toBe('reproducible')
  })

  it('published match: yes, no, unknown', () => {
    const claims = [ok(x0, D1), ok(x1, D1)]
    const k = targetKey(target())
    expect(only(policy, claims, new Map([[k, D1]])).published).toEqual({ digest: D1, match: 'yes' })
    expect(only(policy, claims, new Map([[k, D2]])).published).toEqual({ digest: D2, match: 'no' })
    expect(only(policy, claims).published).toEqual({ match: 'unknown' })
    expect(only(policy, [ok(x0, D1)], new Map([[k, D1]])).published.match).toBe('unknown')
  })

  it('reports expected targets without claims as pending, and keeps targets apart', () => {
    const arm = target({ platform: 'linux/arm64' })
    const vs = computeVerdicts({ claims: [ok(x0, D1), ok(x1, D1)], policy, expectedTargets: [target(), arm] })
    expect(vs.map(v => [v.target.platform, v.status])).toEqual([['linux/amd64', 'reproducible'], ['linux/arm64', 'pending']])
    expect(vs[1]?.outstanding).toBe(3)
  })

  it('sets aside the keys it is given, with the reason, like an equivocating key: answered, never counted, never awaited', () => {
    const setAside = new Map([[x0.keyId, 'split view']])
    const v = computeVerdicts({ claims: [ok(x0, D1), ok(x1, D1)], policy, setAside })[0] as TargetVerdict
    expect(v.status).toBe('pending')
    expect(v.agreeing.map(a => a.keyId)).toEqual([x1.keyId])
    expect(v.setAside).toEqual([{ keyId: x0.keyId, name: 'b0', reason: 'split view' }])
    expect(v.trustedCount).toBe(2)
    expect(v.outstanding).toBe(1)
    // Where it has no claim it is listed nowhere and not awaited: nothing it signs can count.
    const arm = target({ platform: 'linux/arm64' })
    const [, w] = computeVerdicts({ claims: [ok(x1, D1, arm), ok(x2, D1, arm)], policy, setAside, expectedTargets: [target(), arm] }) as [TargetVerdict, TargetVerdict]
    expect(w.status).toBe('reproducible')
    expect(w.setAside).toEqual([])
    expect(w.outstanding).toBe(0)
    // Failures of every builder that can still count make `failed`, as without the key.
    expect(computeVerdicts({ claims: [ok(x0, D1), fail(x1), fail(x2)], policy, setAside })[0]?.status).toBe('failed')
    // A stranger is untrusted whatever the set-aside list says.
    const stranger = fixedIdentity(77)
    const u = computeVerdicts({ claims: [ok(stranger, D1)], policy, setAside: new Map([[stranger.keyId, 'x']]) })[0] as TargetVerdict
    expect(u.setAside).toEqual([])
    expect(u.untrusted.map(x => x.keyId)).toEqual([stranger.keyId])
  })

  it('groups claims by target in the order given, an expected target under its smallest tag, and judges the groups as it judges the claims', () => {
    const arm = target({ platform: 'linux/arm64' })
    const claims = [ok(x1, D1, arm), ok(x0, D1), ok(x2, D2, { ...arm, tag: 'v2' }), ok(x1, D1)]
    const expectedTargets = [target({ tag: 'v3.1' }), target({ tag: 'v3.0.1' }), target({ variant: 'extra', tag: undefined })]
    const groups = groupByTarget(claims, expectedTargets)
    expect([...groups.keys()]).toEqual([targetKey(target()), targetKey(target({ variant: 'extra' })), targetKey(arm)])
    expect(groups.get(targetKey(target()))).toEqual({ expected: target({ tag: 'v3.0.1' }), claims: [claims[1], claims[3]] })
    expect(groups.get(targetKey(arm))).toEqual({ claims: [claims[0], claims[2]] })
    const vs = verdictsOfGroups(groups, { policy })
    expect(vs).toEqual(computeVerdicts({ claims, policy, expectedTargets }))
    // Sorted by key; an unannounced target takes the smallest tag its trusted claims name.
    expect(vs.map(v => [v.target.variant, v.target.platform, v.target.tag])).toEqual([['base', 'linux/amd64', 'v3.0.1'], ['base', 'linux/arm64', 'v2'], ['extra', 'linux/amd64', undefined]])
  })
})

// Property tests over small random scenarios.
const BUILDERS = Array.from({ length: 5 }, (_, i) => fixedIdentity(i + 1))
const STRANGERS = Array.from({ length: 3 }, (_, i) => fixedIdentity(i + 100))
const TARGETS = [target(), target({ variant: 'nvidia' })]
const DIGESTS = [D1, D2, D3]

interface Scenario { n: number, ops: number, k: number, m: number, a: number, claims: VerifiedClaim[] }

function policyFor (n: number, ops: number, k: number, m: number, a: number): TrustPolicy {
  return parsePolicy({
    version: 1,
    builders: BUILDERS.slice(0, n).map((b, i) => ({ name: `b${i}`, operator: `op${i % ops}`, publicKey: b.publicKeyPem })),
    threshold: k,
    minOperators: m,
    allowedDissent: a
  })
}

function synthetic (identity: SigningIdentity, claim: Claim): VerifiedClaim {
  // Same content and key → same id, like a real envelope id of a deterministic signature.
  return { claim, keyId: identity.keyId, id: createHash('sha256').update(identity.keyId).update(JSON.stringify(claim)).digest('hex') }
}

const claimArb = (signers: SigningIdentity[]): fc.Arbitrary<VerifiedClaim> => fc.record({
  who: fc.integer({ min: 0, max: signers.length - 1 }),
  t: fc.integer({ min: 0, max: TARGETS.length - 1 }),
  what: fc.integer({ min: 0, max: DIGESTS.length }),
  minute: fc.integer({ min: 0, max: 2 })
}).map(({ who, t, what, minute }) => {
  const tg = TARGETS[t] as Target
  const base = what === DIGESTS.length ? failureClaim(undefined, tg) : successClaim(DIGESTS[what] as string, tg)
  return synthetic(signers[who] as SigningIdentity, { ...base, finishedOn: `2026-01-01T00:1${minute}:00Z` })
})

const scenarioArb: fc.Arbitrary<Scenario> = fc.integer({ min: 1, max: 5 }).chain(n =>
  fc.integer({ min: 1, max: n }).chain(ops =>
    fc.record({
      n: fc.constant(n),
      ops: fc.constant(ops),
      k: fc.integer({ min: 1, max: n }),
      m: fc.integer({ min: 1, max: ops }),
      a: fc.integer({ min: 0, max: 2 }),
      claims: fc.array(claimArb(BUILDERS.slice(0, n)), { maxLength: 12 })
    })))

const essence = (vs: TargetVerdict[]): unknown => vs.map(v => ({
  key: v.key,
  status: v.status,
  consensusDigest: v.consensusDigest,
  agreeing: v.agreeing.map(x => [x.keyId, x.digest]),
  dissenting: v.dissenting.map(x => [x.keyId, x.digest]),
  failed: v.failed.map(x => x.keyId),
  equivocating: v.equivocating
}))

describe('computeVerdicts properties', () => {
  it('claim order never matters', () => {
    fc.assert(fc.property(scenarioArb, fc.infiniteStream(fc.nat()), (s, rnd) => {
      const policy = policyFor(s.n, s.ops, s.k, s.m, s.a)
      const shuffled = s.claims.map(c => [rnd.next().value, c] as const).sort((x, y) => x[0] - y[0]).map(([, c]) => c)
      expect(computeVerdicts({ claims: shuffled, policy })).toEqual(computeVerdicts({ claims: s.claims, policy }))
    }), { numRuns: 200 })
  })

  it('adding untrusted claims never changes a verdict', () => {
    fc.assert(fc.property(scenarioArb, fc.array(claimArb(STRANGERS), { minLength: 1, maxLength: 8 }), (s, extra) => {
      const policy = policyFor(s.n, s.ops, s.k, s.m, s.a)
      const before = computeVerdicts({ claims: s.claims, policy })
      const after = computeVerdicts({ claims: [...s.claims, ...extra], policy }).filter(v => before.some(b => b.key === v.key))
      expect(essence(after)).toEqual(essence(before))
    }), { numRuns: 200 })
  })

  it('raising k never turns pending into reproducible', () => {
    fc.assert(fc.property(scenarioArb, s => {
      const at = (k: number): TargetVerdict[] => computeVerdicts({ claims: s.claims, policy: policyFor(s.n, s.ops, k, s.m, s.a), expectedTargets: TARGETS })
      const base = at(s.k)
      for (let k = s.k + 1; k <= s.n; k++) {
        const higher = at(k)
        base.forEach((v, i) => {
          if (v.status === 'pending') expect(higher[i]?.status).not.toBe('reproducible')
        })
      }
    }), { numRuns: 200 })
  })

  it('duplicates do not change the verdict', () => {
    fc.assert(fc.property(scenarioArb, s => {
      const policy = policyFor(s.n, s.ops, s.k, s.m, s.a)
      const before = essence(computeVerdicts({ claims: s.claims, policy }))
      expect(essence(computeVerdicts({ claims: [...s.claims, ...s.claims], policy }))).toEqual(before)
      // The same claim re-signed (a new envelope id) is still the same key's one vote.
      const resent = s.claims.map(c => ({ ...c, id: createHash('sha256').update(`again ${c.id}`).digest('hex') }))
      const twice = essence(computeVerdicts({ claims: [...s.claims, ...resent], policy })) as Array<{ status: string }>
      expect(twice.map(v => v.status)).toEqual((before as Array<{ status: string }>).map(v => v.status))
    }), { numRuns: 200 })
  })
})

describe('the examples of docs/consensus.md', () => {
  // Builders A (alice), B (bob), C (carol), D (alice); k = 2, m = 2.
  const [A, B, C, D] = BUILDERS as [SigningIdentity, SigningIdentity, SigningIdentity, SigningIdentity]
  const policyWith = (a: number): TrustPolicy => parsePolicy({
    version: 1,
    builders: [['A', 'alice', A], ['B', 'bob', B], ['C', 'carol', C], ['D', 'alice', D]].map(([name, operator, id]) => ({ name, operator, publicKey: (id as SigningIdentity).publicKeyPem })),
    threshold: 2,
    minOperators: 2,
    allowedDissent: a
  })
  const X = STRANGERS[0] as SigningIdentity
  const Y = STRANGERS[1] as SigningIdentity
  const s = (id: SigningIdentity, d: string): VerifiedClaim => synthetic(id, successClaim(d))
  const f = (id: SigningIdentity): VerifiedClaim => synthetic(id, failureClaim())
  const rows: Array<[string, VerifiedClaim[], number, string]> = [
    ['A:d1, B:d1', [s(A, D1), s(B, D1)], 0, 'reproducible'],
    ['A:d1, D:d1', [s(A, D1), s(D, D1)], 0, 'pending'],
    ['A:d1, D:d1, B:d1', [s(A, D1), s(D, D1), s(B, D1)], 0, 'reproducible'],
    ['A:d1', [s(A, D1)], 0, 'pending'],
    ['A:d1, B:d2', [s(A, D1), s(B, D2)], 0, 'unreproducible'],
    ['A:d1, B:d2 (a = 1)', [s(A, D1), s(B, D2)], 1, 'disputed'],
    ['A:d1, B:d1, C:d2', [s(A, D1), s(B, D1), s(C, D2)], 0, 'unreproducible'],
    ['A:d1, B:d1, C:d2 (a = 1)', [s(A, D1), s(B, D1), s(C, D2)], 1, 'reproducible'],
    ['A:d1, A:d2, B:d1', [s(A, D1), s(A, D2), s(B, D1)], 0, 'pending'],
    ['all fail', [f(A), f(B), f(C), f(D)], 0, 'failed'],
    ['A:fail, B:fail', [f(A), f(B)], 0, 'pending'],
    ['A:d1, B:fail', [s(A, D1), f(B)], 0, 'pending'],
    ['A:d1, X:d1, Y:d1', [s(A, D1), s(X, D1), s(Y, D1)], 0, 'pending'],
    ['A:d1 twice', [s(A, D1), synthetic(A, { ...successClaim(D1), startedOn: '2026-01-01T00:05:00Z' })], 0, 'pending']
  ]
  for (const [name, claims, a, status] of rows) {
    it(`${name} → ${status}`, () => {
      expect(computeVerdicts({ claims, policy: policyWith(a) })[0]?.status).toBe(status)
    })
  }
})
