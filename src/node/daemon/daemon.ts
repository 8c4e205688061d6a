import { createFollowers } from '../follow/index.js'
import { createIngest, ingestTopic } from '../ingest/index.js'
import { silentLogger } from '../logger.js'
import { createP2PNode, TOPICS } from '../p2p/index.js'
import { createScheduler, schedulerFollower } from '../scheduler/index.js'
import { createReportGossip, createTriage, reportsTopic } from '../triage/index.js'
import { createNodeTestResults } from '../test-results/node.js'
import { createWork, noticesTopic } from '../work/index.js'
import { createBackfillSync, storeBackfillSource } from './backfill.js'
import { createStatementsExchange, type StatementsExchange } from './statements.js'
import { createBuilderRegistry } from './builders.js'
import { createNodeCapabilities } from './capabilities.js'
import { MessageRejectedError } from './errors.js'
import { feedService } from './feed.js'
import { createNodeLog } from './node-log.js'
import { startServices, stopServices, type Service } from './services.js'
import type { Daemon, DaemonComponents, DaemonInit } from './types.js'

/**
 * One rebuilder node: verifies and stores what peers gossip, catches up from each peer it
 * meets, builds what trusted announcers announce (one build at a time by default), signs
 * and publishes the result, and serves it all over the HTTP feed when asked. Each gossip
 * topic is one handler registered with the p2p node; each view derived from the stored
 * messages is one follower; each long-lived part is one service in `services` (docs/node.md).
 */
export async function createDaemon (components: DaemonComponents, init: DaemonInit): Promise<Daemon> {
  const logger = components.logger ?? silentLogger()
  const log = logger.forComponent('daemon')
  const { store, identity, policy, metrics } = components
  const ingest = createIngest({ store, policy, logger, ...(metrics != null ? { metrics } : {}) }, { ...init.validator, ...(init.trustedRate != null ? { trustedRate: init.trustedRate } : {}) })
  const builders = createBuilderRegistry({ store, policy: () => policy, log })
  let running = false
  let claimsSigned = 0
  const nodeLog = init.tlog !== undefined ? createNodeLog({ store, identity, policy, logger, log, p2p: () => p2p, running: () => running }, init.tlog) : undefined
  // Why builders disagree, from file manifests: only where this node keeps its own.
  const triage = components.manifests == null ? undefined : createTriage({ store, identity, keeper: components.manifests, ...(components.outputs != null ? { outputs: components.outputs } : {}), policy: () => policy, log: logger.forComponent('triage'), p2p: { fileManifest: async (...a) => await p2p.fileManifest(...a), connectedPeers: () => p2p.connectedPeers() } }, init.triage)
  // Reports travel on their own topic, to observers as to builders.
  const publishReport = async (data: Uint8Array): Promise<unknown> => await p2p.publish(TOPICS.divergences, data)
  triage?.onReport(r => { publishReport(Buffer.from(r.envelopeJson, 'utf8')).catch((err: unknown) => { log.debug({ err }, 'publishing a divergence report failed') }) })
  // What gossip sends once, served to (and fetched from) each peer met.
  const statementsSource = async (): ReturnType<StatementsExchange['source']> => await statements.source()
  const p2p = await createP2PNode({ logger, privateKey: identity.privateKey, backfillSource: storeBackfillSource(store), statementsSource, ...nodeLog?.sources, ...(triage != null ? { manifestSource: triage.manifestSource } : {}) }, {
    listen: init.listen, bootstrap: init.bootstrap, mdns: init.mdns, maxConnections: init.maxConnections, gossip: init.gossip, ...(init.nat != null ? { nat: init.nat } : {}), ...(init.peerStorePath != null ? { peerStorePath: init.peerStorePath } : {})
  })
  const backfill = createBackfillSync({ store, p2p, log, accept: async (items) => await ingest.acceptItems(items) }, init.backfill)
  // Smoke test results travel on their own topic, beside the verdicts, never counted in them.
  const testResults = createNodeTestResults({ store, policy: () => policy, identity, logger, publish: async (data) => await p2p.publish(TOPICS.testResults, data) })
  const capabilities = createNodeCapabilities({ identity, builders, rebuilder: components.rebuilder, p2p, log })
  const reports = createReportGossip({ store, policy: () => policy, log: logger.forComponent('divergences') }, init.reports)
  const statements = createStatementsExchange({ store, builders, reports, testResults, p2p, log })
  // Which targets this node builds: notices of who builds what, on their own topic.
  const work = createWork({
    store, policy: () => policy, identity, logger,
    builders: () => builders.list(),
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
  const followers = createFollowers({ store, logger }, [...(nodeLog != null ? [nodeLog.follower] : []), schedulerFollower(scheduler, log), ...(triage != null ? [triage.follower] : [])])
  ingest.addEventListener('stored', ({ detail: m }) => {
    followers.notify()
    if (m.kind !== 'claim') return
    // A claim may cover or settle a target this node waits on (the queue is looked at again),
    // tells how long its variant takes, and may be the agreement a held test result waits on.
    if (work.claimStored(m)) scheduler.reconsider()
    scheduler.learn(m.claim)
    testResults.claimStored(m.claim.target)
  })
  metrics?.observeJobs(async () => ({ queued: (await store.listJobs('queued')).length, running: scheduler.running().length }))
  metrics?.observeFollowers(followers.lag)

  // One registration per topic (a new topic: its handler file, and one line here).
  const missed = (from: string): void => { backfill.missed(from) }
  p2p.handle(TOPICS.announcements, ingestTopic({ ingest, log, missed }, TOPICS.announcements))
  p2p.handle(TOPICS.claims, ingestTopic({ ingest, log, missed }, TOPICS.claims))
  p2p.handle(TOPICS.capabilities, capabilities.topic)
  p2p.handle(TOPICS.divergences, reportsTopic({ reports, log }))
  p2p.handle(TOPICS.notices, noticesTopic({ work, log }))
  p2p.handle(TOPICS.testResults, testResults.topic)
  if (nodeLog != null) p2p.handle(TOPICS.checkpoints, nodeLog.topic)

  const feed = init.http != null ? feedService({ logger, log, store, ingest, policy, metrics, builders: () => builders.list(), p2p, scheduler, backfill, lapsed: work.lapsed, ...nodeLog?.feed }, init.http) : undefined
  function metPeer (peerId: string): void {
    void backfill.syncFrom(peerId)
    void statements.fetch(peerId)
    nodeLog?.witness.met(peerId)
  }
  p2p.onPeer((event, peerId) => {
    metrics?.setPeers(p2p.connectedPeers().length)
    if (event !== 'connect' || !running) return
    // Nothing is re-announced on a timer: what a new peer holds, and its log's newest checkpoint, is fetched.
    metPeer(peerId)
  })

  // Started in this order, stopped in reverse: the store closes last.
  const services: Service[] = [
    { name: 'store', start: () => {}, stop: async () => { await store.close() } },
    ...nodeLog?.services ?? [],
    capabilities.probe,
    { name: 'builder table', start: builders.load, stop: builders.save },
    { name: 'p2p node', start: p2p.start, stop: p2p.stop },
    { name: 'gossip', start: () => { running = true }, stop: () => { running = false } },
    // Stopped after the scheduler and before p2p: withdrawals go out, so peers need not wait for this node's notices to expire.
    { name: 'work notices', start: () => {}, stop: work.stop },
    { name: 'scheduler', start: scheduler.start, stop: scheduler.stop },
    ...triage != null ? [{ name: 'triage', start: triage.start, stop: triage.stop }] : [],
    { name: 'followers', start: followers.start, stop: followers.stop },
    capabilities.publisher,
    ...feed != null ? [feed] : [],
    { name: 'back-fill', start: () => { backfill.start(); for (const peer of p2p.connectedPeers()) metPeer(peer) }, stop: () => { statements.stop(); backfill.stop() } }
  ]
  let stopping: Promise<void> | undefined
  return {
    peerId: p2p.peerId, keyId: identity.keyId, store, p2p, scheduler, ingest, tlog: nodeLog?.tlog,
    policy: () => policy,
    multiaddrs: () => p2p.multiaddrs(),
    async start () {
      if (running) return
      if (policy.builders.length === 0 && policy.announcers.length === 0) log.warn('no trust policy configured: no builder or announcer is trusted, nothing is built and every verdict stays pending')
      await startServices(services)
      // `join` prints identity, addresses and platforms once, as its result.
      log.debug({ peerId: p2p.peerId, keyId: identity.keyId, addrs: p2p.multiaddrs(), builds: capabilities.own()?.platforms }, 'node started')
    },
    async stop () {
      stopping ??= (async () => {
        running = false
        await stopServices(services, log)
        log.info('node stopped')
      })()
      await stopping
    },
    builders: () => builders.list(),
    capabilities: capabilities.own,
    async announce (envelope) {
      const data = Buffer.from(typeof envelope === 'string' ? envelope : JSON.stringify(envelope), 'utf8')
      const { outcome, judgement: r } = await ingest.accept(TOPICS.announcements, data)
      if (r.verdict === 'reject' || r.refused === true) throw new MessageRejectedError(r.reason ?? 'invalid')
      if (r.message == null || r.message.kind !== 'announcement') throw new MessageRejectedError('not an announcement')
      const { recipients } = await p2p.publish(TOPICS.announcements, data)
      return { id: r.message.id, stored: outcome === 'stored', recipients }
    },
    syncFrom: async (peerId) => await backfill.syncNow(peerId),
    httpUrl: () => feed?.url(),
    stats: () => ({ peers: p2p.connectedPeers().length, reachability: p2p.stats().reachability, gossip: p2p.stats().gossip, backfill: backfill.stats(), claimsSigned, followers: followers.lag(), ...(nodeLog != null ? { tlog: nodeLog.stats() } : {}) }),
    onStored: (cb) => { ingest.addEventListener('stored', ({ detail }) => { cb(detail) }) }
  }
}
