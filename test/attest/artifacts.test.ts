import { describe, expect, it } from 'vitest'
import {
  ANNOTATION, CLAIM_ARTIFACT, VSA_ARTIFACT, cosignAttestationTag, envelopeLayer, mergeCosignManifest,
  mergeReferrersIndex, referrerManifest, referrersTag, sha256Of, type Attestation
} from '../../src/node/attest/artifacts.js'
import type { Statement } from '../../src/protocol/statement.js'
import { buildIndexVsa, QUORUM_FIELD } from '../../src/protocol/vsa.js'

const D = `sha256:${'ab'.repeat(32)}`
const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D, size: 512 }
const att = (kind: 'vsa' | 'claim', body: string, signer = 'k1', target = 't1'): Attestation =>
  ({ kind, envelope: new TextEncoder().encode(body), predicateType: kind === 'vsa' ? 'https://slsa.dev/verification_summary/v1' : 'https://slsa.dev/provenance/v1', signer, target })

describe('attestation artifacts', () => {
  it('names the referrers and cosign tags after the digest', () => {
    expect(referrersTag(D)).toBe(`sha256-${'ab'.repeat(32)}`)
    expect(cosignAttestationTag(D)).toBe(`sha256-${'ab'.repeat(32)}.att`)
  })

  it('builds the same artifact manifest for the same envelope, with subject and artifactType', () => {
    const a = referrerManifest(subject, att('claim', '{"x":1}'))
    const b = referrerManifest(subject, att('claim', '{"x":1}'))
    expect(a.digest).toBe(b.digest)
    expect(a.digest).toBe(sha256Of(a.bytes))
    const m = JSON.parse(new TextDecoder().decode(a.bytes))
    expect(m.subject).toEqual(subject)
    expect(m.artifactType).toBe(CLAIM_ARTIFACT)
    expect(m.layers[0].digest).toBe(sha256Of(new TextEncoder().encode('{"x":1}')))
    expect(referrerManifest(subject, att('vsa', '{}')).descriptor.artifactType).toBe(VSA_ARTIFACT)
  })

  it('merges the referrers index without dropping or repeating entries', () => {
    const one = referrerManifest(subject, att('claim', '1')).descriptor
    const two = referrerManifest(subject, att('claim', '2')).descriptor
    const foreign = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'cd'.repeat(32)}`, size: 10, artifactType: 'application/spdx+json' }
    const merged = mergeReferrersIndex([foreign, one], [one, two, two])
    expect(merged.changed).toBe(true)
    expect(merged.manifests.map(d => d.digest)).toEqual([foreign.digest, one.digest, two.digest])
    expect(mergeReferrersIndex(merged.manifests, [one, two]).changed).toBe(false)
  })

  it('replaces only the same signer\'s VSA about the same target in cosign\'s manifest', () => {
    const oldVsa = envelopeLayer(att('vsa', 'old'))
    const otherSigner = envelopeLayer(att('vsa', 'other', 'k2'))
    const otherTarget = envelopeLayer(att('vsa', 'target 2', 'k1', 't2'))
    const claim = envelopeLayer(att('claim', 'c'))
    const foreign = { mediaType: 'application/vnd.dsse.envelope.v1+json', digest: `sha256:${'ef'.repeat(32)}`, size: 3, annotations: { predicateType: 'https://spdx.dev/Document' } }
    const existing = [foreign, oldVsa, otherSigner, otherTarget, claim]
    const fresh = att('vsa', 'new')
    const supersedes = (l: { annotations?: Record<string, string> }): boolean =>
      l.annotations?.[ANNOTATION.kind] === 'vsa' && l.annotations[ANNOTATION.signer] === fresh.signer && l.annotations[ANNOTATION.target] === fresh.target
    const merged = mergeCosignManifest(existing, [envelopeLayer(fresh), claim], supersedes)
    expect(merged.changed).toBe(true)
    const layers = JSON.parse(new TextDecoder().decode(merged.manifest)).layers as Array<{ digest: string }>
    expect(layers.map(l => l.digest)).toEqual([foreign.digest, otherSigner.digest, otherTarget.digest, claim.digest, envelopeLayer(fresh).digest])
    const again = mergeCosignManifest(layers as typeof existing, [envelopeLayer(fresh), claim], supersedes)
    expect(again.changed).toBe(false)
    expect(again.manifest).toEqual(merged.manifest)
  })
})

describe('index summary', () => {
  const platformVsa = (digest: string, result: 'PASSED' | 'FAILED', operators: string[]): Statement => ({
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'r/x', digest: { sha256: digest.slice(7) } }],
    predicateType: 'https://slsa.dev/verification_summary/v1',
    predicate: {
      verificationResult: result,
      inputAttestations: operators.map(o => ({ uri: `urn:x:${digest}:${o}` })),
      [QUORUM_FIELD]: { threshold: 2, agreeingBuilders: operators.length, agreeingOperators: operators.length, operators }
    }
  })
  const A = `sha256:${'a'.repeat(64)}`
  const B = `sha256:${'b'.repeat(64)}`
  const C = `sha256:${'c'.repeat(64)}`
  const opts = (manifests: string[]): Parameters<typeof buildIndexVsa>[1] =>
    ({ verifier: 'urn:v', timeVerified: '2026-01-01T00:00:00Z', policyUri: 'urn:p', index: { name: 'r/x', digest: D, manifests } })

  it('passes only when every image the index lists passed, with the smallest quorum', () => {
    const vsas = [platformVsa(A, 'PASSED', ['o1', 'o2', 'o3']), platformVsa(B, 'PASSED', ['o1', 'o2'])]
    const ok = buildIndexVsa(vsas, opts([A, B])).predicate as Record<string, unknown>
    expect(ok.verificationResult).toBe('PASSED')
    expect(ok.resourceUri).toBe(`pkg:oci/x@sha256%3A${D.slice(7)}?repository_url=r/x`)
    expect(ok[QUORUM_FIELD]).toEqual({ threshold: 2, agreeingBuilders: 2, agreeingOperators: 2, operators: ['o1', 'o2'] })
    expect((ok.inputAttestations as unknown[]).length).toBe(5)
    // A platform nobody rebuilt, or one that failed, fails the index.
    expect((buildIndexVsa(vsas, opts([A, B, C])).predicate as Record<string, unknown>).verificationResult).toBe('FAILED')
    expect((buildIndexVsa([vsas[0]!, platformVsa(B, 'FAILED', [])], opts([A, B])).predicate as Record<string, unknown>).verificationResult).toBe('FAILED')
    expect((buildIndexVsa([], opts([])).predicate as Record<string, unknown>).verificationResult).toBe('FAILED')
  })
})
