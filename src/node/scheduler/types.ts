import type { Claim } from '../../protocol/types.js'
import type { BuildProgress, PlatformCapabilities, RebuildRequest as BuildRequest, Recipe, SmokeOutcome } from '../rebuilder/index.js'
import type { Job } from '../store/types.js'

/** What the scheduler asks of a rebuild engine: the build engine's request, without keeping tarballs. */
export type RebuildRequest = Omit<BuildRequest, 'outDir'>

/** The build engine's `Rebuilder` satisfies it; tests may pass any engine of this shape. */
export interface SchedulerRebuilder {
  rebuild: (req: RebuildRequest, opts: { signal?: AbortSignal, onProgress?: (p: BuildProgress) => void }) => Promise<{ claim: Claim, smoke?: SmokeOutcome, recipe?: Recipe }>
}

export interface SchedulerInit {
  /** Builds run at once (1 by default: builds are heavy and share one engine). */
  concurrency?: number
  /** Attempts for a target whose builds fail with an infrastructure error. */
  maxAttempts?: number
  /** First retry delay; doubled per attempt. */
  backoffMs?: number
  maxBackoffMs?: number
  /**
   * Queue only announcements made at most this long ago (by their signed `announcedAt`), so a
   * new node that back-fills a network's history does not rebuild every release in it.
   * Undefined or 0: no limit.
   */
  maxAnnouncementAgeMs?: number
  /** How often a running build's step, elapsed time and log path are logged (default 60 s). */
  progressIntervalMs?: number
}

/** A build running now, as `/api/v1/jobs` and the progress log report it. */
export interface RunningBuild {
  job: Job
  startedAt: string
  /** Where the rebuild is: `source`, `prepare`, `build` or `read`. */
  phase?: string
  /** The current step, such as `[2/5] RUN make`. */
  step?: string
  /** Variant being built (a `from` base before the variant itself). */
  variant?: string
  elapsedMs: number
  logPath?: string
}

export interface SchedulerCapabilities {
  /** What this node builds; undefined (or no rebuilder) makes it an observer that queues nothing. */
  capabilities: () => PlatformCapabilities | undefined
}

/**
 * `broken`: a job's every attempt ended in an infrastructure error; the node builds and signs
 * nothing more until `jobs retry`, restarts included.
 */
export type HostHealth =
  | { state: 'ok' }
  | { state: 'broken', /** When the last attempt gave up. */ since: string, /** The job that gave up. */ job: string, reason: string }
