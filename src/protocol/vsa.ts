import type { TargetVerdict } from './quorum.js'
import type { Statement } from './statement.js'
import { targetSubjectName } from './target.js'
import { SLSA_VSA_V1, STATEMENT_TYPE } from './types.js'

/** Level recorded in `verifiedLevels` when a quorum of trusted rebuilders agreed. */
export const REPRODUCIBLE_LEVEL = 'NEKO_REBUILDER_REPRODUCIBLE'

export interface VsaOptions {
  /** `verifier.id`: URI of the verifier (e.g. the node's feed URL). */
  verifier: string
  /** `policy.uri`: where the trust policy applied can be found. */
  policyUri?: string
  /** Envelope ids (`envelopeId`) of the claims the verdict rests on. */
  claimIds: string[]
  /** RFC 3339 */
  timeVerified: string
}

/**
 * A SLSA verification summary (VSA v1) for one target verdict. PASSED only when the target
 * is reproducible and does not contradict the published digest. The subject is the agreed
 * manifest (or, without one, the source commit); input attestations are named by envelope id.
 * Sign it with `signStatement` (messages.ts).
 */
export function buildVsa (verdict: TargetVerdict, opts: VsaOptions): Statement {
  const t = verdict.target
  const passed = verdict.status === 'reproducible' && verdict.published.match !== 'no'
  const subjectDigest: Record<string, string> = verdict.consensusDigest !== undefined
    ? { sha256: verdict.consensusDigest.slice('sha256:'.length) }
    : { gitCommit: t.commit }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: targetSubjectName(t), digest: subjectDigest }],
    predicateType: SLSA_VSA_V1,
    predicate: {
      verifier: { id: opts.verifier },
      timeVerified: opts.timeVerified,
      resourceUri: `git+${t.repository}@${t.commit}#${t.variant}@${t.platform}`,
      policy: { uri: opts.policyUri ?? 'urn:neko-rebuilder:policy:local' },
      inputAttestations: [...new Set(opts.claimIds)].sort().map(id => ({ uri: `urn:neko-rebuilder:envelope:${id}`, digest: { sha256: id } })),
      verificationResult: passed ? 'PASSED' : 'FAILED',
      verifiedLevels: passed ? [REPRODUCIBLE_LEVEL] : []
    }
  }
}
