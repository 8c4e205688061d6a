import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FailureClass } from '../protocol/types.js'
import type { MessageKind } from './store/types.js'

/**
 * Prometheus metrics of one node. Each node owns its own registry (not prom-client's global
 * one) so several nodes in one process (devnet, tests) never collide on metric names.
 */
export interface Metrics {
  readonly registry: Registry
  setPeers (n: number): void
  claimStored (kind: MessageKind): void
  buildFinished (outcome: 'success' | FailureClass, seconds: number): void
  /** Where the queue gauges read from at each scrape. */
  observeJobs (read: () => Promise<{ queued: number, running: number }>): void
  /** Where the follower lag gauge reads from at each scrape: messages stored and not yet applied, per follower. */
  observeFollowers (read: () => Record<string, number>): void
}

export interface MetricsInit {
  /** Also export process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean
  /** Prefix of every metric name. Default `neko_`. */
  prefix?: string
}

export function createMetrics (init: MetricsInit = {}): Metrics {
  const prefix = init.prefix ?? 'neko_'
  const registry = new Registry()
  if (init.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix })

  const peers = new Gauge({ name: `${prefix}peers`, help: 'Connected libp2p peers', registers: [registry] })
  const stored = new Counter({
    name: `${prefix}messages_stored_total`,
    help: 'Verified messages stored, by kind',
    labelNames: ['kind'] as const,
    registers: [registry]
  })
  const builds = new Counter({
    name: `${prefix}builds_total`,
    help: 'Rebuilds finished, by outcome (success or failure class)',
    labelNames: ['outcome'] as const,
    registers: [registry]
  })
  // Rebuilds of real images take minutes to hours: buckets from 10 s to 4 h.
  const durations = new Histogram({
    name: `${prefix}build_duration_seconds`,
    help: 'Wall time of finished rebuilds, by outcome',
    labelNames: ['outcome'] as const,
    buckets: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
    registers: [registry]
  })
  // Read at scrape time, so the gauges never drift from the store and the scheduler.
  let readJobs: (() => Promise<{ queued: number, running: number }>) | undefined
  let jobsRead: Promise<{ queued: number, running: number }> | undefined
  const jobs = async (): Promise<{ queued: number, running: number }> => {
    // One read serves both gauges of a scrape.
    jobsRead ??= (readJobs?.() ?? Promise.resolve({ queued: 0, running: 0 })).finally(() => { jobsRead = undefined })
    return await jobsRead
  }
  new Gauge({
    name: `${prefix}jobs_queued`,
    help: 'Rebuilds waiting in this node\'s queue',
    registers: [registry],
    async collect () { this.set((await jobs()).queued) }
  })
  new Gauge({
    name: `${prefix}builds_running`,
    help: 'Rebuilds running now',
    registers: [registry],
    async collect () { this.set((await jobs()).running) }
  })
  let readLag: (() => Record<string, number>) | undefined
  new Gauge({
    name: `${prefix}follower_lag`,
    help: 'Messages stored that a derived view (build queue, divergence, transparency log, consensus view, attest publisher) has not applied yet, by follower',
    labelNames: ['follower'] as const,
    registers: [registry],
    collect () {
      this.reset()
      for (const [follower, lag] of Object.entries(readLag?.() ?? {})) this.set({ follower }, lag)
    }
  })
  // Zero-initialise the labels so dashboards see every series from the start.
  for (const kind of ['announcement', 'claim'] as const) stored.inc({ kind }, 0)
  peers.set(0)

  return {
    registry,
    setPeers (n) { peers.set(n) },
    claimStored (kind) { stored.inc({ kind }) },
    observeJobs (read) { readJobs = read },
    observeFollowers (read) { readLag = read },
    buildFinished (outcome, seconds) {
      builds.inc({ outcome })
      durations.observe({ outcome }, seconds)
    }
  }
}
