import { formatDuration, type Scheduler } from './scheduler.js'
import type { HostHealth, RunningBuild } from './types.js'
import type { Job, Store } from '../store/types.js'
import type { LapsedTaker } from '../work/index.js'

/** `/api/v1/jobs`: what this node will build, is building and has built. */
export interface JobsView {
  queued: Job[]
  running: Array<RunningBuild & { elapsed: string }>
  /** Finished (done, failed, refused, broken), newest first. */
  recent: Job[]
  counts: { queued: number, running: number, done: number, failed: number, refused: number, broken: number, covered: number }
  /** `broken`: this node stopped building after infrastructure errors and signs nothing until `jobs retry`. */
  host: HostHealth
  /**
   * Trusted builders whose notices expired without a claim at least twice: they take targets
   * and do not build them (each lapse cost the network a notice's life before someone else took over).
   */
  lapsedTakers?: LapsedTaker[]
}

/** Lapses before a builder is reported: one can be a crash, two is a pattern. */
export const LAPSES_REPORTED = 2

export const DEFAULT_RECENT_JOBS = 20

export async function jobsView (components: { store: Store, scheduler: Scheduler, lapsed?: () => LapsedTaker[] }, opts: { recent?: number } = {}): Promise<JobsView> {
  const all = await components.store.listJobs()
  const counts = { queued: 0, running: 0, done: 0, failed: 0, refused: 0, broken: 0, covered: 0 }
  for (const j of all) counts[j.state]++
  const byTime = (a: Job, b: Job): number => a.updatedAt < b.updatedAt ? -1 : a.updatedAt > b.updatedAt ? 1 : 0
  const queued = all.filter(j => j.state === 'queued').sort(byTime)
  const recent = all.filter(j => j.state !== 'queued' && j.state !== 'running').sort(byTime).reverse()
    .slice(0, opts.recent ?? DEFAULT_RECENT_JOBS)
  const running = components.scheduler.progress().map(b => ({ ...b, elapsed: formatDuration(b.elapsedMs) }))
  const lapsedTakers = components.lapsed?.().filter(l => l.lapsed >= LAPSES_REPORTED) ?? []
  return { queued, running, recent, counts, host: components.scheduler.health(), lapsedTakers }
}
