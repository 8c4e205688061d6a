import type { Logger } from '../logger.js'
import { OCI_INDEX, OCI_MANIFEST } from '../registry/media-types.js'
import type { ImageReference } from '../registry/reference.js'
import type { Descriptor, RegistryWriter } from '../registry/writer.js'
import { indexDescriptors } from '../registry/writer.js'
import {
  ANNOTATION, EMPTY_CONFIG, attestationLayers, cosignAttestationTag, envelopeLayer, mergeCosignManifest,
  mergeReferrersIndex, referrerManifest, referrersTag, type Attestation
} from './artifacts.js'

export interface AttachResult {
  /** How referrers are listed on this registry. */
  mode: 'api' | 'tag'
  /** Artifact manifests pushed now. */
  pushed: string[]
  /** Artifact manifests that were already there. */
  present: string[]
  /** Whether the `sha256-<hex>` index was written (tag mode only). */
  indexUpdated: boolean
  /** Whether cosign's `.att` manifest was written. */
  cosignUpdated: boolean
}

export interface AttestationPublisherComponents {
  writer: RegistryWriter
  log: Logger
}

export interface AttestationPublisher {
  /**
   * Attaches every attestation to `subject` (an image manifest of `ref`'s repository): an
   * artifact manifest each, the referrers tag index where the registry has no referrers
   * API, and cosign's `.att` manifest. Blobs first, then manifests, then the tags that
   * point to them, so a failure midway leaves nothing dangling and loses nothing: the
   * next run finds what is there and adds the rest.
   */
  attach: (ref: ImageReference, subject: Descriptor, attestations: Attestation[]) => Promise<AttachResult>
}

const MAX_INDEX_ENTRIES = 1000

export function createAttestationPublisher (components: AttestationPublisherComponents): AttestationPublisher {
  const { writer, log } = components
  return {
    async attach (ref, subject, attestations) {
      const apiList = await writer.referrers(ref, subject.digest)
      const mode: 'api' | 'tag' = apiList !== undefined ? 'api' : 'tag'
      const tag = referrersTag(subject.digest)
      const index = mode === 'tag' ? await writer.getManifest(ref, tag) : undefined
      const listed = apiList ?? (index !== undefined ? indexDescriptors(index.json, `${tag} index`, MAX_INDEX_ENTRIES) : [])
      const have = new Set(listed.map(d => d.digest))

      const built = attestations.map(a => referrerManifest(subject, a))
      const pushed: string[] = []
      const present: string[] = []
      let emptyPushed = false
      for (const [i, m] of built.entries()) {
        // Listed in the index (or by the API) means the registry has it: the digest covers every byte.
        if (have.has(m.digest)) {
          present.push(m.digest)
          continue
        }
        const a = attestations[i] as Attestation
        if (!emptyPushed) {
          await writer.pushBlob(ref, EMPTY_CONFIG)
          emptyPushed = true
        }
        await writer.pushBlob(ref, a.envelope)
        await writer.putManifest(ref, m.digest, m.bytes, OCI_MANIFEST)
        pushed.push(m.digest)
      }

      let indexUpdated = false
      if (mode === 'tag') {
        const merged = mergeReferrersIndex(listed, built.map(m => m.descriptor))
        if (merged.changed || index === undefined) {
          await writer.putManifest(ref, tag, merged.bytes, OCI_INDEX)
          indexUpdated = true
        }
      }

      // Cosign's tag: a newer VSA by the same signer about the same target replaces the older one there.
      const attTag = cosignAttestationTag(subject.digest)
      const existingAtt = await writer.getManifest(ref, attTag)
      const layers = attestations.map(envelopeLayer)
      const newVsas = attestations.filter(a => a.kind === 'vsa')
      const supersedes = (l: Descriptor): boolean => l.annotations?.[ANNOTATION.kind] === 'vsa' &&
        newVsas.some(a => a.signer === l.annotations?.[ANNOTATION.signer] && a.target === l.annotations?.[ANNOTATION.target])
      const merged = mergeCosignManifest(attestationLayers(existingAtt), layers, supersedes)
      let cosignUpdated = false
      if (merged.changed || existingAtt === undefined) {
        await writer.pushBlob(ref, merged.config)
        await writer.putManifest(ref, attTag, merged.manifest, OCI_MANIFEST)
        cosignUpdated = true
      }
      log.info({ reference: ref.canonical, subject: subject.digest, mode, pushed: pushed.length, present: present.length, indexUpdated, cosignUpdated }, 'attestations attached')
      return { mode, pushed, present, indexUpdated, cosignUpdated }
    }
  }
}
