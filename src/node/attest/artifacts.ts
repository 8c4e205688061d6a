/**
 * The OCI objects that carry attestations next to an image, built byte for byte (pure, no
 * I/O). Three shapes, so that every tool finds them:
 *
 * - one OCI 1.1 artifact manifest per envelope (`subject` = the image manifest,
 *   `artifactType` says claim or VSA): what the referrers API and `oras discover` list;
 * - the referrers tag schema's index under `sha256-<hex>`, for registries without the API;
 * - cosign's attestation manifest under `sha256-<hex>.att`: every envelope as a
 *   `application/vnd.dsse.envelope.v1+json` layer, which `cosign verify-attestation`,
 *   Kyverno and the policy-controller read.
 *
 * Every object is a function of its inputs only (no timestamps), so pushing the same
 * attestation twice gives the same digests and nothing is duplicated.
 */
import { createHash } from 'node:crypto'
import { DSSE_ENVELOPE, OCI_CONFIG, OCI_EMPTY, OCI_EMPTY_DIGEST, OCI_INDEX, OCI_MANIFEST } from '../registry/media-types.js'
import type { Descriptor, RawManifest } from '../registry/writer.js'

/** `artifactType` of a builder's claim (a DSSE envelope, exactly as the builder signed it). */
export const CLAIM_ARTIFACT = 'application/vnd.neko-rebuilder.claim.v1+json'
/** `artifactType` of a verification summary signed by whoever ran `attest`. */
export const VSA_ARTIFACT = 'application/vnd.neko-rebuilder.vsa.v1+json'

export const ANNOTATION = {
  /** The Statement's predicate type, as in-toto and Docker name it. */
  predicateType: 'in-toto.io/predicate-type',
  /** The same, under the name cosign writes on its layers. */
  cosignPredicateType: 'predicateType',
  /** Cosign marks its layers with an empty signature annotation (the signature is in the envelope). */
  cosignSignature: 'dev.cosignproject.cosign/signature',
  /** Key id of the envelope's signer (a hint for tools; readers verify). */
  signer: 'dev.neko-rebuilder.signer',
  /** `claim` or `vsa`. */
  kind: 'dev.neko-rebuilder.kind',
  /** `targetKey` of the target the envelope is about. */
  target: 'dev.neko-rebuilder.target'
} as const

export type AttestationKind = 'claim' | 'vsa'

/** One envelope to attach. */
export interface Attestation {
  kind: AttestationKind
  /** The envelope's exact bytes (a claim is attached as received, never re-serialised). */
  envelope: Uint8Array
  predicateType: string
  /** Key id of the signer. */
  signer: string
  /** `targetKey` of the target. */
  target: string
}

/** The bytes of the empty config (`{}`) every artifact manifest points to. */
export const EMPTY_CONFIG = new TextEncoder().encode('{}')

export function sha256Of (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The referrers tag schema's tag for `digest`: `<algorithm>-<hex>`. */
export function referrersTag (digest: string): string {
  return digest.replace(':', '-')
}

/** Cosign's attestation tag for `digest`: `<algorithm>-<hex>.att`. */
export function cosignAttestationTag (digest: string): string {
  return `${referrersTag(digest)}.att`
}

function layerAnnotations (a: Attestation): Record<string, string> {
  return {
    [ANNOTATION.cosignSignature]: '',
    [ANNOTATION.cosignPredicateType]: a.predicateType,
    [ANNOTATION.predicateType]: a.predicateType,
    [ANNOTATION.kind]: a.kind,
    [ANNOTATION.signer]: a.signer,
    [ANNOTATION.target]: a.target
  }
}

/** The layer descriptor of an envelope. */
export function envelopeLayer (a: Attestation): Descriptor {
  return { mediaType: DSSE_ENVELOPE, digest: sha256Of(a.envelope), size: a.envelope.byteLength, annotations: layerAnnotations(a) }
}

export interface BuiltManifest {
  bytes: Uint8Array
  digest: string
  /** The descriptor an index lists it under (with `artifactType` and annotations). */
  descriptor: Descriptor
}

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v))

/** An OCI 1.1 artifact manifest carrying one envelope, referring to `subject`. */
export function referrerManifest (subject: Descriptor, a: Attestation): BuiltManifest {
  const artifactType = a.kind === 'vsa' ? VSA_ARTIFACT : CLAIM_ARTIFACT
  const annotations = { [ANNOTATION.predicateType]: a.predicateType, [ANNOTATION.kind]: a.kind, [ANNOTATION.signer]: a.signer, [ANNOTATION.target]: a.target }
  const bytes = encode({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType,
    config: { mediaType: OCI_EMPTY, digest: OCI_EMPTY_DIGEST, size: EMPTY_CONFIG.byteLength },
    layers: [envelopeLayer(a)],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations
  })
  const digest = sha256Of(bytes)
  return { bytes, digest, descriptor: { mediaType: OCI_MANIFEST, digest, size: bytes.byteLength, artifactType, annotations } }
}

/**
 * The referrers tag schema's index with `add` merged into what `existing` lists: nothing
 * dropped, nothing listed twice. `changed` is false when every descriptor was there.
 */
export function mergeReferrersIndex (existing: Descriptor[], add: Descriptor[]): { bytes: Uint8Array, changed: boolean, manifests: Descriptor[] } {
  const have = new Set(existing.map(d => d.digest))
  const manifests = [...existing]
  for (const d of add) {
    if (have.has(d.digest)) continue
    have.add(d.digest)
    manifests.push(d)
  }
  const bytes = encode({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })
  return { bytes, changed: manifests.length !== existing.length, manifests }
}

/** The layers of an existing cosign attestation manifest, foreign ones included. */
export function attestationLayers (existing: RawManifest | undefined): Descriptor[] {
  const layers = existing?.json.layers
  if (!Array.isArray(layers)) return []
  return layers.filter((l): l is Descriptor => typeof l === 'object' && l !== null && typeof (l as Descriptor).digest === 'string' &&
    typeof (l as Descriptor).mediaType === 'string' && typeof (l as Descriptor).size === 'number')
}

/**
 * Cosign's attestation manifest: the existing layers (other tools' attestations kept as
 * they are), minus the VSAs `supersedes` names (an older summary by the same signer: a
 * cosign policy judges every attestation of a type, so a stale FAILED would block a later
 * PASSED forever), plus the new layers. The superseded VSAs stay reachable as referrers.
 */
export function mergeCosignManifest (existing: Descriptor[], add: Descriptor[], supersedes: (layer: Descriptor) => boolean): { manifest: Uint8Array, config: Uint8Array, changed: boolean } {
  const addDigests = new Set(add.map(d => d.digest))
  const kept = existing.filter(l => addDigests.has(l.digest) || !supersedes(l))
  const have = new Set(kept.map(l => l.digest))
  const layers = [...kept, ...add.filter(d => !have.has(d.digest))]
  const changed = layers.length !== existing.length || layers.some((l, i) => l.digest !== existing[i]?.digest)
  // Cosign writes its manifests through go-containerregistry, with a config that lists the
  // layers as diff ids (they are not compressed); readers take the layers from the manifest.
  const config = encode({ architecture: '', created: '0001-01-01T00:00:00Z', os: '', config: {}, rootfs: { type: 'layers', diff_ids: layers.map(l => l.digest) } })
  const manifest = encode({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256Of(config), size: config.byteLength },
    layers
  })
  return { manifest, config, changed }
}
