import { LimitError, NekoError } from '../../protocol/errors.js'
import { LIMITS } from '../../protocol/limits.js'
import type { Logger } from '../logger.js'
import { DSSE_ENVELOPE } from '../registry/media-types.js'
import type { ImageReference } from '../registry/reference.js'
import type { Descriptor, RegistryWriter } from '../registry/writer.js'
import { indexDescriptors } from '../registry/writer.js'
import { ANNOTATION, attestationLayers, cosignAttestationTag, referrersTag } from './artifacts.js'

/** An envelope found next to an image, with where it was found. */
export interface FoundEnvelope {
  /** Digest of the envelope's bytes (the layer digest). */
  digest: string
  bytes: Uint8Array
  /** `referrer sha256:…` (an artifact manifest) or `sha256-….att` (cosign's tag). */
  source: string
  annotations: Record<string, string>
}

/** Something next to the image that was not read: shown, never counted. */
export interface SkippedAttestation {
  source: string
  /** Digest of the envelope refused, when one was read. */
  envelope?: string
  reason: string
}

export interface CollectedAttestations {
  /** How referrers were listed: the registry's API, or the `sha256-<hex>` tag. */
  mode: 'api' | 'tag'
  /** Referrer descriptors as listed (all artifact types). */
  referrers: Descriptor[]
  /** Every distinct DSSE envelope found (by digest). */
  envelopes: FoundEnvelope[]
  skipped: SkippedAttestation[]
}

export interface CollectComponents {
  writer: RegistryWriter
  log?: Logger
}

export interface CollectInit {
  /** Referrer manifests read for one image. Default 1000. */
  maxReferrers?: number
  /** DSSE layers read per manifest. Default 256. */
  maxLayersPerManifest?: number
  /** Envelopes read for one image, all sources together. Default 2000. */
  maxEnvelopes?: number
}

/**
 * Lists the referrers of `digest` (the API where the registry has one, else the
 * referrers tag) and reads every DSSE envelope they and cosign's `.att` tag carry. A
 * referrer whose `subject` is another image, or whose blobs do not match their digests, is
 * skipped with its reason; nothing is verified here.
 */
export async function collectAttestations (components: CollectComponents, ref: ImageReference, digest: string, init: CollectInit = {}): Promise<CollectedAttestations> {
  const { writer } = components
  const maxReferrers = init.maxReferrers ?? 1000
  const maxLayers = init.maxLayersPerManifest ?? 256
  const maxEnvelopes = init.maxEnvelopes ?? 2000
  let mode: 'api' | 'tag' = 'api'
  let referrers = await writer.referrers(ref, digest)
  if (referrers === undefined) {
    mode = 'tag'
    const index = await writer.getManifest(ref, referrersTag(digest))
    referrers = index !== undefined ? indexDescriptors(index.json, `${referrersTag(digest)} index`, maxReferrers) : []
  }
  if (referrers.length > maxReferrers) throw new LimitError('referrers', maxReferrers, referrers.length)

  const envelopes = new Map<string, FoundEnvelope>()
  const skipped: SkippedAttestation[] = []
  const readLayers = async (layers: Descriptor[], source: string): Promise<void> => {
    const dsse = layers.filter(l => l.mediaType === DSSE_ENVELOPE)
    if (dsse.length > maxLayers) {
      skipped.push({ source, reason: `${dsse.length} envelope layers, more than the ${maxLayers} read per manifest` })
      return
    }
    for (const l of dsse) {
      if (envelopes.has(l.digest)) continue
      if (envelopes.size >= maxEnvelopes) throw new LimitError('attestations', maxEnvelopes, envelopes.size + 1)
      if (l.size > LIMITS.envelopeBytes) {
        skipped.push({ source, reason: `layer ${l.digest} is ${l.size} bytes, more than an envelope may be (${LIMITS.envelopeBytes})` })
        continue
      }
      try {
        const bytes = await writer.getBlob(ref, l.digest, LIMITS.envelopeBytes)
        envelopes.set(l.digest, { digest: l.digest, bytes, source, annotations: l.annotations ?? {} })
      } catch (err) {
        if (!(err instanceof NekoError)) throw err
        skipped.push({ source, reason: `${err.name}: ${err.message}` })
      }
    }
  }

  for (const d of referrers) {
    const source = `referrer ${d.digest}`
    try {
      const m = await writer.getManifest(ref, d.digest)
      if (m === undefined) {
        skipped.push({ source, reason: 'listed but not in the registry' })
        continue
      }
      const subject = m.json.subject as { digest?: unknown } | undefined
      if (subject?.digest !== digest) {
        skipped.push({ source, reason: `an attestation for another image (subject ${typeof subject?.digest === 'string' ? subject.digest : 'missing'})` })
        continue
      }
      await readLayers(attestationLayers(m), source)
    } catch (err) {
      if (!(err instanceof NekoError) || err instanceof LimitError) throw err
      skipped.push({ source, reason: `${err.name}: ${err.message}` })
    }
  }
  const att = await writer.getManifest(ref, cosignAttestationTag(digest))
  if (att !== undefined) await readLayers(attestationLayers(att), cosignAttestationTag(digest))
  components.log?.debug({ reference: ref.canonical, digest, mode, referrers: referrers.length, envelopes: envelopes.size }, 'attestations collected')
  return { mode, referrers, envelopes: [...envelopes.values()], skipped }
}

/** The annotation of a found envelope that says its kind, if any. */
export function foundKind (e: FoundEnvelope): string | undefined {
  return e.annotations[ANNOTATION.kind]
}
