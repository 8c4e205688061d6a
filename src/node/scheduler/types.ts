import type { Claim } from '../../protocol/types.js'
import type { PlatformCapabilities } from '../build/recipe.js'

/** What the scheduler asks of a rebuild engine (the build engine's `Rebuilder` satisfies it). */
export interface RebuildRequest {
  repository: string
  /** Tag (preferred, so the claim records it) or commit. */
  ref: string
  expectedCommit?: string
  /** Built-in recipe name or file; undefined uses the repository's own recipe or its Dockerfile. */
  recipe?: string
  variant?: string
  platform: string
}

export interface SchedulerRebuilder {
  rebuild: (req: RebuildRequest, opts: { signal?: AbortSignal }) => Promise<{ claim: Claim }>
}

export interface SchedulerInit {
  /** Builds run at once (1 by default: builds are heavy and share one engine). */
  concurrency?: number
  /** Attempts for a target whose builds fail with an infrastructure error. */
  maxAttempts?: number
  /** First retry delay; doubled per attempt. */
  backoffMs?: number
  maxBackoffMs?: number
}

export interface SchedulerCapabilities {
  /** What this node builds; undefined (or no rebuilder) makes it an observer that queues nothing. */
  capabilities: () => PlatformCapabilities | undefined
}
