import { describe, expect, it } from 'vitest'
import { claimToStatement, statementToClaim } from '../../src/protocol/claim.js'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { computeVerdicts, type TargetVerdict, type VerifiedClaim } from '../../src/protocol/quorum.js'
import type { Claim } from '../../src/protocol/types.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { digestOf, failureClaim, makePolicy, successClaim } from './fixtures.js'

const D1 = digestOf('d1')
const D2 = digestOf('d2')
const E1 = '509ab2bf-4d9a-493e-969e-063613d38167'
const E2 = '7c1f0d2e-0000-4000-8000-000000000002'

function onEngine (c: Claim, engineId: string | undefined): Claim {
  const environment = { ...c.environment, engine: { ...c.environment.engine } }
  if (engineId !== undefined) environment.engine.id = engineId
  return { ...c, environment }
}

function verified (identity: SigningIdentity, claim: Claim): VerifiedClaim {
  const d = decodeMessage(signClaim(claim, identity), { allowEmbeddedKeys: true })
  if (d.kind !== 'claim') throw new Error('not a claim')
  return { claim: d.claim, keyId: d.keyId, id: d.id }
}

describe('one vote per engine', () => {
  const { policy, builders } = makePolicy(3, { threshold: 2 })
  const [x0, x1, x2] = builders as [SigningIdentity, SigningIdentity, SigningIdentity]
  const ok = (id: SigningIdentity, digest: string, engine?: string): VerifiedClaim => verified(id, onEngine(successClaim(digest), engine))
  const only = (claims: VerifiedClaim[]): TargetVerdict => computeVerdicts({ claims, policy })[0] as TargetVerdict

  it('the engine id and BuildKit worker survive signing, for success and failure claims', () => {
    const c = { ...onEngine(successClaim(D1), E1), environment: { ...onEngine(successClaim(D1), E1).environment, buildkitWorker: `default/default ${E2}` } }
    expect(statementToClaim(claimToStatement(c)).environment).toEqual(c.environment)
    const f = { ...onEngine(failureClaim(), E1) }
    f.environment.buildkitWorker = 'default/default'
    expect(statementToClaim(claimToStatement(f)).environment).toEqual(f.environment)
  })

  it('two keys on one engine that agree are one vote, not a quorum', () => {
    const v = only([ok(x0, D1, E1), ok(x1, D1, E1)])
    expect(v.status).toBe('pending')
    expect(v.agreeing.map(a => a.keyId)).toEqual([[x0.keyId, x1.keyId].sort()[0]])
    expect(v.sameEngine).toEqual([{ keyId: [x0.keyId, x1.keyId].sort()[1], name: expect.any(String), digest: D1, engineId: E1, countedAs: [x0.keyId, x1.keyId].sort()[0], claimId: expect.any(String) }])
    expect(v.trustedCount).toBe(2)
  })

  it('every builder answered from one engine: unsettled, with the reason, not pending', () => {
    const v = only([ok(x0, D1, E1), ok(x1, D1, E1), ok(x2, D1, E1)])
    expect(v.status).toBe('unsettled')
    expect(v.outstanding).toBe(0)
    expect(v.reason).toBe('3 of 3 answered from 1 engine; threshold 2')
  })

  it('a third key on another engine settles it', () => {
    const v = only([ok(x0, D1, E1), ok(x1, D1, E1), ok(x2, D1, E2)])
    expect(v.status).toBe('reproducible')
    expect(v.agreeing).toHaveLength(2)
    expect(v.sameEngine).toHaveLength(1)
  })

  it('different digests from one engine are both counted: the engine could not repeat its build', () => {
    const v = only([ok(x0, D1, E1), ok(x1, D2, E1)])
    expect(v.status).toBe('unreproducible')
    expect(v.sameEngine).toEqual([])
    expect(v.dissenting).toHaveLength(1)
  })

  it('claims without an engine id count one per key, as before', () => {
    const v = only([ok(x0, D1), ok(x1, D1)])
    expect(v.status).toBe('reproducible')
    expect(v.sameEngine).toEqual([])
  })

  it('the order of claims never matters', () => {
    const claims = [ok(x0, D1, E1), ok(x1, D1, E1), ok(x2, D1, E1)]
    const a = only(claims)
    const b = only([...claims].reverse())
    expect(b).toEqual(a)
    expect(a.agreeing).toHaveLength(1)
    expect(a.sameEngine).toHaveLength(2)
  })
})
