import { decodeMessages } from '../../protocol/messages.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { policyKeys } from '../../protocol/policy.js'
import type { TargetVerdict, VerifiedClaim } from '../../protocol/quorum.js'
import { targetKey } from '../../protocol/target.js'
import { decodeVsa, type VsaSummary } from '../../protocol/vsa.js'
import { judge } from '../consensus/evaluate.js'
import { targetFails, type GateOutcome } from '../consensus/outcome.js'
import type { FoundEnvelope, SkippedAttestation } from './collect.js'

/**
 * `verify-image`'s answer for one image manifest: a gate's outcome, so it exits like
 * `status`; or `forged`: attestations were found, but every one was refused or is about
 * another image, and no trusted builder said anything about this one.
 */
export type ImageOutcome = GateOutcome | 'forged'

export interface ImageJudgement {
  digest: string
  platform?: string
  /** Verdicts of the targets built for this image's platform, recomputed from the claims. */
  verdicts: TargetVerdict[]
  /** Targets of another platform: claims that were attached to the wrong image; not counted. */
  elsewhere: TargetVerdict[]
  /** Verification summaries found (their signature checked with the key they embed); shown, never counted. */
  vsas: Array<VsaSummary & { source: string, envelope: string, aboutThisImage: boolean }>
  /** Envelopes that did not verify or did not parse, and attestations skipped while reading. */
  rejected: SkippedAttestation[]
  outcome: ImageOutcome
}

/**
 * Recomputes, offline, what the attestations found next to an image say about it under
 * `policy`: every claim is verified against the policy's keys (a claim by any other key is
 * listed as untrusted, one that does not verify is rejected), the quorum is counted per
 * target, and the image passes only when a target of its platform is reproducible to
 * exactly its digest. VSAs are read for display: the consumer trusts the policy, not
 * whoever signed a summary.
 */
export function judgeImage (policy: TrustPolicy, image: { digest: string, platform?: string }, found: FoundEnvelope[], skipped: SkippedAttestation[] = []): ImageJudgement {
  const rejected: SkippedAttestation[] = [...skipped]
  const claims: VerifiedClaim[] = []
  const vsas: ImageJudgement['vsas'] = []
  const texts = found.map(f => Buffer.from(f.bytes).toString('utf8'))
  const keys = policyKeys(policy)
  for (let start = 0; start < texts.length; start += 512) {
    const results = decodeMessages(texts.slice(start, start + 512), { keys, allowEmbeddedKeys: true })
    results.forEach((r, j) => {
      const f = found[start + j] as FoundEnvelope
      if (r.ok) {
        if (r.message.kind === 'claim') claims.push({ claim: r.message.claim, keyId: r.message.keyId, id: r.message.id })
        else rejected.push({ source: f.source, envelope: f.digest, reason: 'an announcement, not an attestation about an image' })
        return
      }
      try {
        const vsa = decodeVsa(texts[start + j], { keys, allowEmbeddedKeys: true })
        vsas.push({ ...vsa, source: f.source, envelope: f.digest, aboutThisImage: vsa.subjects.some(x => `sha256:${x.sha256 ?? ''}` === image.digest) })
      } catch {
        rejected.push({ source: f.source, envelope: f.digest, reason: `${r.error.name}: ${r.error.message}` })
      }
    })
  }
  const published = new Map<string, string>()
  for (const c of claims) if (image.platform === undefined || c.claim.target.platform === image.platform) published.set(targetKey(c.claim.target), image.digest)
  // No announcement: the image's own claims name its targets.
  const all = judge({ policy, announcements: [], claims, published, claimedTargets: true }).verdicts
  const mine = all.filter(v => image.platform === undefined || v.target.platform === image.platform)
  const elsewhere = all.filter(v => !mine.includes(v))
  let outcome: ImageOutcome = 'pending'
  if (mine.some(v => v.status === 'reproducible' && v.consensusDigest === image.digest)) {
    outcome = 'ok'
  } else if (mine.some(targetFails)) {
    outcome = 'not-reproducible'
  } else if (mine.some(v => v.status === 'unsettled')) {
    outcome = 'unsettled'
  } else if (mine.every(v => v.trustedCount === 0) && (rejected.length > 0 || elsewhere.length > 0 || vsas.some(v => !v.aboutThisImage))) {
    // Nothing trusted speaks about this image, and what is attached was refused or is
    // about another image: someone attached it, so this is no image waiting for rebuilders.
    outcome = 'forged'
  }
  const out: ImageJudgement = { digest: image.digest, verdicts: mine, elsewhere, vsas, rejected, outcome }
  if (image.platform !== undefined) out.platform = image.platform
  return out
}
