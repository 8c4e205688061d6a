import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Ingest } from '../ingest/index.js'
import type { ComponentLogger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { TOPICS, type P2PNode } from '../p2p/index.js'
import { createScheduler, type Scheduler } from '../scheduler/index.js'
import type { Store } from '../store/types.js'
import type { NodeTestResults } from '../test-results/node.js'
import { createWork, type Work } from '../work/index.js'
import type { BuilderRegistry } from './builders.js'
import type { NodeCapabilities } from './capabilities.js'
import type { DaemonComponents, DaemonInit } from './types.js'

export interface NodeBuildsComponents {
  store: Store
  policy: TrustPolicy
  identity: SigningIdentity
  logger: ComponentLogger
  metrics?: Metrics | undefined
  ingest: Ingest
  rebuilder?: DaemonComponents['rebuilder']
  p2p: Pick<P2PNode, 'publish'>
  builders: Pick<BuilderRegistry, 'list'>
  capabilities: Pick<NodeCapabilities, 'engine'>
  testResults: Pick<NodeTestResults, 'hold' | 'claimStored'>
}

export interface NodeBuilds {
  work: Work
  scheduler: Scheduler
  /** Claims this node signed since it was made. */
  claimsSigned: () => number
}

/**
 * What the node builds and who builds what: shared work (notices on their own topic) and the
 * build queue, told of each claim stored (it may cover or settle a target this node waits on,
 * tells how long its variant takes, and may be the agreement a held test result waits on).
 */
export function createNodeBuilds (components: NodeBuildsComponents, init: DaemonInit): NodeBuilds {
  const { store, identity, logger, metrics, ingest, p2p, capabilities, testResults } = components
  let claimsSigned = 0
  const work = createWork({
    store, policy: () => components.policy, identity, logger,
    builders: () => components.builders.list(),
    engineId: () => capabilities.engine()?.environment.engine.id,
    publish: async (data) => { await p2p.publish(TOPICS.notices, data) },
    onReopen: () => { scheduler.reconsider() },
    onYield: (id) => { scheduler.giveUp(id) },
    recipeOf: (job) => scheduler.recipeOf(job)
  }, init.work)
  const scheduler = createScheduler({
    logger, store, ingest, rebuilder: components.rebuilder, identity, capabilities: capabilities.engine,
    work,
    publishClaim: async (envelopeJson) => { await p2p.publish(TOPICS.claims, Buffer.from(envelopeJson, 'utf8')) },
    onTestResult: testResults.hold,
    onClaim (claim) { claimsSigned++; metrics?.buildFinished(claim.failure?.class ?? 'success', (Date.parse(claim.finishedOn) - Date.parse(claim.startedOn)) / 1000 || 0) }
  }, { concurrency: init.concurrency, maxAttempts: init.maxAttempts, backoffMs: init.backoffMs, ...(init.maxAnnouncementAgeMs != null ? { maxAnnouncementAgeMs: init.maxAnnouncementAgeMs } : {}), ...(init.progressIntervalMs != null ? { progressIntervalMs: init.progressIntervalMs } : {}) })
  ingest.addEventListener('stored', ({ detail: m }) => {
    if (m.kind !== 'claim') return
    if (work.claimStored(m)) scheduler.reconsider()
    scheduler.learn(m.claim)
    testResults.claimStored(m.claim.target)
  })
  metrics?.observeJobs(async () => ({ queued: (await store.listJobs('queued')).length, running: scheduler.running().length }))
  return { work, scheduler, claimsSigned: () => claimsSigned }
}
