import type { Divergence } from '../../protocol/divergence.js'
import type { Digest, FailureClass, PublishedMatch, RecipeRef, VerdictStatus } from '../../protocol/types.js'

/**
 * The answer to "is this release reproducible?", as `status` prints it and the HTTP API
 * serves it. Plain JSON: no class instances, so it serialises as is.
 */

/** One signed claim as it bears on a verdict. */
export interface ClaimSummary {
  claimId: string
  keyId: string
  /** Operator name from the trust policy, when the key is trusted. */
  operator?: string
  trusted: boolean
  /** The digest the claim reports (success claims only). */
  digest?: Digest
  failure?: { class: FailureClass, message: string, step?: string, logExcerpt?: string }
  /** For a dissenter: where its image first differs from the consensus image. */
  divergence?: Divergence
  finishedOn?: string
}

export interface TargetConsensus {
  /** `targetKey` of the target. */
  key: string
  variant: string
  platform: string
  status: VerdictStatus
  /** The agreed manifest digest; set only when `reproducible`. */
  consensusDigest?: Digest
  /** The digest with the most trusted votes, agreed or not: what dissenters are compared with. */
  leadingDigest?: Digest
  /** Agreeing trusted claims needed for a verdict. */
  threshold: number
  /** Trusted builders that reported on this target. */
  trustedCount: number
  /** Trusted builders of the policy that have not reported yet. */
  outstanding: number
  /** Distinct operators among the agreeing builders. */
  operators: string[]
  agreeing: ClaimSummary[]
  dissenting: ClaimSummary[]
  failed: ClaimSummary[]
  untrusted: ClaimSummary[]
  /** Trusted votes folded into another key's: same digest from the same engine (docs/consensus.md). */
  sameEngine: Array<{ keyId: string, operator?: string, digest: Digest, engineId: string, countedAs: string }>
  /** Trusted keys that signed two different digests for this target; not counted. */
  equivocating: Array<{ keyId: string, operator?: string, digests: Digest[] }>
  /** Trusted keys with claims here that are not counted, and why (a log proven to show two views). */
  setAside: Array<{ keyId: string, operator?: string, reason: string }>
  published: { digest?: Digest, match: PublishedMatch }
  /**
   * When the node stored the newest claim on the target (RFC 3339). Read from a node's
   * bundle (`status --node`), which carries no receipt times: the newest claim's `finishedOn`.
   */
  lastClaimAt?: string
  /** Why an `unsettled` target cannot settle (`3 of 3 answered from 1 engine; threshold 2`). */
  reason?: string
}

export interface AnnouncementSummary {
  id: string
  keyId: string
  commit: string
  announcedAt: string
  /** Whether the policy trusts this key to announce releases. */
  trusted: boolean
}

export interface TagConsensus {
  repository: string
  tag: string
  commit: string
  recipe: RecipeRef
  /** The announcement the verdicts rest on. */
  announcement: AnnouncementSummary
  /** Other announcements of the same tag (a moved tag, an untrusted announcer), newest first. */
  otherAnnouncements: AnnouncementSummary[]
  /** The worst target status: what a CI gate should act on. */
  status: VerdictStatus
  targets: TargetConsensus[]
}
