import type { DecodedMessage } from '../../protocol/messages.js'
import type { DivergenceReport } from '../../protocol/divergence-report.js'
import type { TestResult } from '../../protocol/test-result.js'
import type { Announcement, Claim, Digest, Target } from '../../protocol/types.js'

/**
 * The node's persistent store (a `level` database). Only verified messages are stored;
 * what the store hands back was verified when it arrived, so readers need not verify again.
 * The envelope is kept byte-for-byte (as JSON text) so the public feed can re-serve it for
 * offline verification.
 */

export type MessageKind = 'announcement' | 'claim'

/** What the store adds to a verified message. */
interface Stored {
  /** Content id (`envelopeId`): the same signed message relayed by many peers is one entry. */
  id: string
  /** Arrival order on this node, strictly increasing from 1; the back-fill and feed cursor. */
  cursor: number
  /** Key id of the verified signer. */
  keyId: string
  /** The DSSE envelope exactly as received, JSON text. */
  envelopeJson: string
  /** RFC 3339 time this node stored it. */
  receivedAt: string
}

export type StoredAnnouncement = Stored & { kind: 'announcement', announcement: Announcement }
export type StoredClaim = Stored & { kind: 'claim', claim: Claim }
/** A verified message as stored: an announcement or a claim, told apart by `kind`. */
export type StoredMessage = StoredAnnouncement | StoredClaim

/** `putMessage`'s answer: the entry it wrote, or the cursor of the one already there. */
export type PutResult = { stored: true, cursor: number, message: StoredMessage } | { stored: false, cursor: number }

export interface MessageFilter {
  kind?: MessageKind
  repository?: string
  /** Matches claims whose target.tag is this tag, and announcements of this tag. */
  tag?: string
  commit?: string
  keyId?: string
}

export interface Page<T> {
  items: T[]
  /** Cursor to pass to the next call; equal to the input cursor when nothing new. */
  next: number
}

/**
 * `broken`: every attempt ended in an infrastructure error (engine, runtime, network set-up,
 * disk, memory), so nothing was signed; it waits for `jobs retry`. `covered`: not built here
 * because other builders' claims (or a settled verdict) already answer for it (shared work).
 */
export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'refused' | 'broken' | 'covered'

export interface Job {
  /** `targetKey(target)`: one job per target, so restarts never build twice. */
  id: string
  target: Target
  /** Id of the announcement that asked for it. */
  announcementId: string
  recipe: { name: string, digest: string }
  state: JobState
  attempts: number
  /** Epoch ms before which a retry must not start (backoff for infrastructure errors). */
  notBefore?: number
  lastError?: string
  /** Id of the claim this node published for it. */
  claimId?: string
  updatedAt: string
}

export interface StoreStats {
  messages: number
  announcements: number
  claims: number
  jobsByState: Record<JobState, number>
  /** Entries that failed to decode on read (damaged), reported and skipped. */
  damaged: number
}

/** A divergence report this node signed or received. */
export interface StoredReport {
  /** Hex sha256 of the envelope JSON. */
  id: string
  /** Key id that signed it. */
  keyId: string
  envelopeJson: string
  report: DivergenceReport
}

export interface ReportFilter {
  repository?: string
  tag?: string
  /** `targetKey` */
  key?: string
}

/** What the store holds that a new report would meet: itself, the report of its pair, its target's count. */
export interface ReportStanding {
  stored: boolean
  pairCreatedAt?: string
  forTarget: number
}

/** Divergence reports: derived from claims, so kept beside the message log, not in it. */
export interface ReportStore {
  /** Stores a report in place of any earlier one of the same pair of claims; the oldest go beyond the limits (STORE_LIMITS). */
  save (envelopeJson: string, report: DivergenceReport, keyId: string): Promise<StoredReport>
  /** Whether a report of this pair of claims (`a`, `b`) is stored. */
  has (claimA: string, claimB: string): Promise<boolean>
  standing (id: string, report: DivergenceReport): Promise<ReportStanding>
  /** Reports matching `filter`, newest first. */
  list (filter?: ReportFilter, limit?: number): Promise<StoredReport[]>
  /** Changes whenever a report is saved (kept in the store): part of the HTTP cache key of what shows reports. */
  version (): string
}

/** A smoke test result (in-toto Test Result) this node signed or received. */
export interface StoredTestResult {
  /** Hex sha256 of the envelope JSON. */
  id: string
  /** Key id that signed it. */
  keyId: string
  envelopeJson: string
  testResult: TestResult
}

export interface TestResultFilter {
  repository?: string
  commit?: string
  /** `targetKey` */
  key?: string
  /** The image it ran in (its subject). */
  manifestDigest?: Digest
  /** Its signer. */
  keyId?: string
}

/** What the store holds that a new test result would meet: itself, its signer's result of the target, the target's count. */
export interface TestResultStanding {
  stored: boolean
  /** `finishedOn` of the result of the same signer and target, when one is stored. */
  signerFinishedOn?: string
  forTarget: number
}

/** Smoke test results: shown beside verdicts, never votes, so kept beside the message log, not in it. */
export interface TestResultStore {
  /** Stores a result in place of its signer's earlier one of the same target; the oldest go beyond the limits (STORE_LIMITS). */
  save (envelopeJson: string, testResult: TestResult, keyId: string): Promise<StoredTestResult>
  standing (id: string, testResult: TestResult, keyId: string): Promise<TestResultStanding>
  /** Results matching `filter`, newest first. */
  list (filter?: TestResultFilter, limit?: number): Promise<StoredTestResult[]>
  /** This node's own outcomes, not yet signed, waiting for their target's verdict. */
  readonly waiting: WaitingTestResults
}

/** This node's smoke test outcomes waiting to be signed (for the agreed image) or dropped. */
export interface WaitingTestResults {
  /** Keeps an outcome; beyond STORE_LIMITS.maxWaitingTestResults the oldest go. */
  hold (testResult: TestResult): Promise<void>
  /** The outcomes waiting for one target (`targetKey`), oldest first. */
  of (targetKey: string): Promise<Array<{ id: string, testResult: TestResult }>>
  /** The targets with an outcome waiting. */
  targets (): Promise<Set<string>>
  /** Removes outcomes by id once they are signed or dropped. */
  release (ids: readonly string[]): Promise<void>
}

export interface Store {
  /**
   * Stores a verified message (only the decode path makes a `DecodedMessage`) with its
   * envelope text as received. Returns `stored: false` when its id is already present.
   * Durable when the promise resolves (the write is synced), so an acknowledged message
   * survives a killed process. The node writes through its ingest (src/node/ingest), which
   * judges the message first and tells the node what was stored.
   */
  putMessage (message: DecodedMessage, envelopeJson: string): Promise<PutResult>
  hasMessage (id: string): Promise<boolean>
  getMessage (id: string): Promise<StoredMessage | undefined>
  /** Messages with cursor > `cursor`, oldest first, at most `limit`. */
  messagesSince (cursor: number, limit: number, filter?: MessageFilter): Promise<Page<StoredMessage>>
  /** The cursor of the newest message stored (0 when none): cursors are dense, so messages up to it number about this many. */
  lastCursor (): number
  /** Every claim for one target (`targetKey`). */
  claimsForTarget (targetKey: string): Promise<StoredClaim[]>
  /**
   * Claims for one commit of a repository, in arrival order: every claim by the `keys` given
   * (the policy's builders; each key's read bounded on its own), and of the others the first
   * `maxClaimsPerQuery`.
   */
  claimsForCommit (repository: string, commit: string, keys?: Iterable<string>): Promise<StoredClaim[]>
  announcements (filter?: { repository?: string, tag?: string }): Promise<StoredAnnouncement[]>
  /** Distinct targets that have at least one claim or announcement. */
  targets (): Promise<Target[]>
  putJob (job: Job): Promise<void>
  getJob (id: string): Promise<Job | undefined>
  listJobs (state?: JobState): Promise<Job[]>
  getState<T = unknown> (key: string): Promise<T | undefined>
  setState (key: string, value: unknown): Promise<void>
  stats (): Promise<StoreStats>
  /** Divergence reports, over their own sublevels of the same database. */
  readonly reports: ReportStore
  /** Smoke test results, over their own sublevels of the same database. */
  readonly testResults: TestResultStore
  close (): Promise<void>
}
