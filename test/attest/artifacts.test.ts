import { describe, expect, it } from 'vitest'
import {
  ANNOTATION, CLAIM_ARTIFACT, VSA_ARTIFACT, cosignAttestationTag, envelopeLayer, mergeCosignManifest,
  mergeReferrersIndex, referrerManifest, referrersTag, sha256Of, type Attestation
} from '../../src/node/attest/artifacts.js'

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
