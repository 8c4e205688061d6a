import { describe, expect, it } from 'vitest'
import { decodeBundle, parseBundle, serializeBundle } from '../../src/protocol/bundle.js'
import { verifyEnvelope } from '../../src/protocol/dsse.js'
import { LimitError, SignatureError } from '../../src/protocol/errors.js'
import { decodeMessage, signAnnouncement, signClaim, signStatement } from '../../src/protocol/messages.js'
import { policyKeys } from '../../src/protocol/policy.js'
import { computeVerdicts, type TargetVerdict } from '../../src/protocol/quorum.js'
import { SLSA_VSA_V1 } from '../../src/protocol/types.js'
import { buildVsa, FAILED_LEVEL, QUORUM_FIELD, REPRODUCIBLE_LEVEL } from '../../src/protocol/vsa.js'
import { announcement, digestOf, fixedIdentity, makePolicy, successClaim, target } from './fixtures.js'

const D1 = digestOf('d1')
const { policy, builders, announcer } = makePolicy(3, { threshold: 2 })
const envs = [signAnnouncement(announcement(), announcer), ...builders.slice(0, 2).map(b => signClaim(successClaim(D1), b))]

describe('bundles', () => {
  it('serializes one envelope per line and parses them back', () => {
    const text = serializeBundle(envs)
    expect(text.split('\n')).toHaveLength(4)
    const b = parseBundle(text, { keys: policyKeys(policy) })
    expect(b.errors).toEqual([])
    expect(b.entries.map(e => [e.line, e.message.kind])).toEqual([[1, 'announcement'], [2, 'claim'], [3, 'claim']])
  })

  it('reports bad lines by number and keeps the good ones', () => {
    const stranger = signClaim(successClaim(D1), fixedIdentity(77))
    const lines = serializeBundle(envs).split('\n')
    const text = [lines[0], '{oops', '', lines[1], JSON.stringify(stranger), 'x'.repeat(50), lines[2]].join('\r\n')
    const b = parseBundle(text, { keys: policyKeys(policy), maxLineLength: 40_000 })
    expect(b.entries.map(e => e.line)).toEqual([1, 4, 7])
    expect(b.errors.map(e => e.line)).toEqual([2, 5, 6])
    expect(b.errors[1]?.error).toBeInstanceOf(SignatureError)
    expect(parseBundle('x'.repeat(100), { maxLineLength: 10 }).errors[0]?.error).toBeInstanceOf(LimitError)
  })

  it('refuses more lines than the limit', () => {
    expect(() => parseBundle('{}\n{}\n{}\n', { maxLines: 2 })).toThrow(LimitError)
  })

  it('decodes lines already split as it decodes the text, and leaves them as they are', () => {
    const stranger = signClaim(successClaim(D1), fixedIdentity(77))
    const lines = serializeBundle(envs).split('\n')
    const text = [lines[0], '{oops', '  ', lines[1], JSON.stringify(stranger), lines[2], ''].join('\r\n') + '\n'
    const split = text.split('\n')
    const copy = [...split]
    const seen: Array<[number, string]> = []
    decodeBundle(split, { keys: policyKeys(policy) }, {
      entry: (line, message) => { seen.push([line, message.kind]) },
      error: (line, error) => { seen.push([line, error.name]) }
    })
    const b = parseBundle(text, { keys: policyKeys(policy) })
    expect(seen).toEqual([...b.entries.map((e): [number, string] => [e.line, e.message.kind]), ...b.errors.map((e): [number, string] => [e.line, e.error.name])].sort((x, y) => x[0] - y[0]))
    expect(seen.map(s => s[0])).toEqual([1, 2, 4, 5, 6])
    expect(split).toEqual(copy)
    // The empty string after the last newline is no line: seven lines fit a limit of seven.
    expect(() => decodeBundle(split, { maxLines: 7 }, { entry: () => {}, error: () => {} })).not.toThrow()
    expect(() => decodeBundle(split, { maxLines: 6 }, { entry: () => {}, error: () => {} })).toThrow(LimitError)
  })
})

describe('VSA', () => {
  const claims = parseBundle(serializeBundle(envs), { keys: policyKeys(policy) }).entries
    .flatMap(e => e.message.kind === 'claim' ? [{ claim: e.message.claim, keyId: e.message.keyId, id: e.message.id }] : [])
  const verdict = computeVerdicts({ claims, policy })[0] as TargetVerdict

  it('summarises a reproducible verdict as PASSED and signs as a DSSE envelope', () => {
    const vsa = buildVsa(verdict, { verifier: 'https://rebuilder.example', claimIds: claims.map(c => c.id), timeVerified: '2026-01-02T00:00:00Z', policyUri: 'https://example.com/trust.json' })
    expect(vsa.predicateType).toBe(SLSA_VSA_V1)
    expect(vsa.subject[0]?.digest).toEqual({ sha256: D1.slice(7) })
    const p = vsa.predicate as Record<string, unknown>
    expect(p.verificationResult).toBe('PASSED')
    expect(p.verifiedLevels).toEqual([REPRODUCIBLE_LEVEL])
    expect(p.policy).toEqual({ uri: 'https://example.com/trust.json' })
    expect((p.inputAttestations as unknown[]).length).toBe(2)
    const signer = fixedIdentity(50)
    const env = signStatement(vsa, signer)
    expect(verifyEnvelope(env, { keys: new Map([[signer.keyId, signer.publicKey]]) }).keyId).toBe(signer.keyId)
    // A VSA is not a claim: decoding it as a network message is refused.
    expect(() => decodeMessage(env, { allowEmbeddedKeys: true })).toThrow(/predicateType/)
  })

  it('FAILED when not reproducible or the published digest differs', () => {
    const pending = computeVerdicts({ claims: claims.slice(0, 1), policy })[0] as TargetVerdict
    expect(buildVsa(pending, { verifier: 'v', claimIds: [], timeVerified: '2026-01-02T00:00:00Z' }).predicate.verificationResult).toBe('FAILED')
    const mismatch: TargetVerdict = { ...verdict, published: { digest: digestOf('ff'), match: 'no' } }
    expect(buildVsa(mismatch, { verifier: 'v', claimIds: [], timeVerified: '2026-01-02T00:00:00Z' }).predicate.verificationResult).toBe('FAILED')
    // VSA v1: verifiedLevels holds "FAILED if policy verification failed", never an empty list.
    expect(buildVsa(pending, { verifier: 'v', claimIds: [], timeVerified: '2026-01-02T00:00:00Z' }).predicate.verifiedLevels).toEqual([FAILED_LEVEL])
  })

  it('names the image verified as resourceUri, a local source as git+file://, and the quorum field by a URI', () => {
    const image = { name: 'ghcr.io/m1k1o/neko/base', digest: D1 }
    const p = buildVsa(verdict, { verifier: 'v', claimIds: [], timeVerified: '2026-01-02T00:00:00Z', image }).predicate as Record<string, unknown>
    expect(p.resourceUri).toBe(`pkg:oci/base@sha256%3A${D1.slice(7)}?repository_url=ghcr.io/m1k1o/neko/base`)
    expect(new URL(p.resourceUri as string).protocol).toBe('pkg:')
    expect(p.quorum).toBeUndefined()
    expect(new URL(QUORUM_FIELD).protocol).toBe('https:')
    expect(p[QUORUM_FIELD]).toEqual({ threshold: 2, agreeingBuilders: 2, agreeingOperators: 2, operators: verdict.operators })
    const local = computeVerdicts({ claims: builders.slice(0, 2).map(b => {
      const d = decodeMessage(signClaim(successClaim(D1, { ...target(), repository: '/srv/git/neko' }), b), { keys: policyKeys(policy) })
      if (d.kind !== 'claim') throw new Error('not a claim')
      return { claim: d.claim, keyId: d.keyId, id: d.id }
    }), policy })[0] as TargetVerdict
    const uri = (buildVsa(local, { verifier: 'v', claimIds: [], timeVerified: '2026-01-02T00:00:00Z' }).predicate as { resourceUri: string }).resourceUri
    expect(uri).toMatch(/^git\+file:\/\/\/srv\/git\/neko@[0-9a-f]{40}#/)
  })

  it('lists the same-engine claims it judged among inputAttestations', () => {
    const onOneEngine = builders.map(b => {
      const c = successClaim(D1)
      c.environment.engine.id = 'ENGINE:ONE'
      const d = decodeMessage(signClaim(c, b), { keys: policyKeys(policy) })
      if (d.kind !== 'claim') throw new Error('not a claim')
      return { claim: d.claim, keyId: d.keyId, id: d.id }
    })
    const v = computeVerdicts({ claims: onOneEngine, policy })[0] as TargetVerdict
    expect(v.sameEngine).toHaveLength(2)
    const counted = [...v.agreeing, ...v.dissenting, ...v.failed].map(x => x.claimId)
    const inputs = (buildVsa(v, { verifier: 'v', claimIds: counted, timeVerified: '2026-01-02T00:00:00Z' }).predicate as { inputAttestations: Array<{ digest: { sha256: string }, annotations?: { vote?: string } }> }).inputAttestations
    expect(inputs.map(i => i.digest.sha256).sort()).toEqual(onOneEngine.map(c => c.id).sort())
    expect(inputs.filter(i => i.annotations?.vote === 'same-engine')).toHaveLength(2)
  })
})
