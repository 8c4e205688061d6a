import type { Claim } from '../../protocol/types.js'
import type { PlatformCapabilities } from '../build/recipe.js'
import type { RebuildRequest as BuildRequest } from '../build/rebuilder.js'

/** What the scheduler asks of a rebuild engine: the build engine's request, without keeping tarballs. */
export type RebuildRequest = Omit<BuildRequest, 'outDir'>

/** The build engine's `Rebuilder` satisfies it; tests may pass any engine of this shape. */
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
