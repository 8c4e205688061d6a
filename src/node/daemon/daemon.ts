import { createConsensusService } from '../consensus/service.js'
import { createFollowers } from '../follow/index.js'
import { createIngest, ingestTopic } from '../ingest/index.js'
import { silentLogger } from '../logger.js'
import { createP2PNode, TOPICS } from '../p2p/index.js'
import { schedulerFollower } from '../scheduler/index.js'
import { createReportGossip, createDivergenceService, reportsTopic } from '../divergence/index.js'
import { createNodeTestResults } from '../test-results/node.js'
import { noticesTopic } from '../work/index.js'
import { daemonApi } from './api.js'
import { createBackfillSync, storeBackfillSource } from './backfill.js'
import { createNodeBuilds } from './builds.js'
import { createStatementsExchange, type StatementsExchange } from './statements.js'
import { createBuilderRegistry } from './builders.js'
import { createNodeCapabilities } from './capabilities.js'
import { feedService } from './feed.js'
import { createNodeLog } from './node-log.js'
import type { Service } from './services.js'
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
  const nodeLog = init.tlog !== undefined ? createNodeLog({ store, identity, policy, logger, log, p2p: () => p2p, running: () => running }, init.tlog) : undefined
  // Why builders disagree, from file manifests: only where this node keeps its own.
  const divergence = components.manifests == null ? undefined : createDivergenceService({ store, identity, keeper: components.manifests, ...(components.outputs != null ? { outputs: components.outputs } : {}), policy: () => policy, log: logger.forComponent('divergence'), p2p: { fileManifest: async (...a) => await p2p.fileManifest(...a), connectedPeers: () => p2p.connectedPeers() } }, init.divergence)
  // Reports travel on their own topic, to observers as to builders.
  divergence?.onReport(r => { p2p.publish(TOPICS.divergences, Buffer.from(r.envelopeJson, 'utf8')).catch((err: unknown) => { log.debug({ err }, 'publishing a divergence report failed') }) })
  // What gossip sends once, served to (and fetched from) each peer met.
  const statementsSource = async (): ReturnType<StatementsExchange['source']> => await statements.source()
  const p2p = await createP2PNode({ logger, privateKey: identity.privateKey, backfillSource: storeBackfillSource(store), statementsSource, ...nodeLog?.sources, ...(divergence != null ? { manifestSource: divergence.manifestSource } : {}) }, {
    listen: init.listen, bootstrap: init.bootstrap, mdns: init.mdns, maxConnections: init.maxConnections, gossip: init.gossip, ...(init.nat != null ? { nat: init.nat } : {}), ...(init.peerStorePath != null ? { peerStorePath: init.peerStorePath } : {})
  })
  const backfill = createBackfillSync({ store, p2p, log, accept: async (items) => await ingest.acceptItems(items) }, init.backfill)
  // Smoke test results travel on their own topic, beside the verdicts, never counted in them.
  const testResults = createNodeTestResults({ store, policy: () => policy, identity, logger, publish: async (data) => await p2p.publish(TOPICS.testResults, data) })
  const capabilities = createNodeCapabilities({ identity, builders, rebuilder: components.rebuilder, p2p, log })
  const reports = createReportGossip({ store, policy: () => policy, log: logger.forComponent('divergence') }, init.reports)
  const statements = createStatementsExchange({ store, policy: () => policy, builders, reports, testResults, p2p, log })
  const { work, scheduler, claimsSigned } = createNodeBuilds({ store, policy, identity, logger, metrics, ingest, rebuilder: components.rebuilder, p2p, builders, capabilities, testResults }, init)
  // The verdicts the HTTP feed serves, kept computed: only where it runs.
  const consensus = init.http != null ? createConsensusService({ store, policy, setAside: nodeLog?.feed.setAside }) : undefined
  const followers = createFollowers({ store, logger, followers: [...(nodeLog != null ? [nodeLog.follower] : []), schedulerFollower(scheduler, log), ...(divergence != null ? [divergence.follower] : []), ...(consensus != null ? [consensus.follower] : [])] })
  ingest.addEventListener('stored', () => { followers.notify() })
  metrics?.observeFollowers(followers.lag)

  // One registration per topic (a new topic: its handler file, and one line here).
  const missed = (from: string): void => { backfill.missed(from) }
  p2p.handle(TOPICS.announcements, ingestTopic({ ingest, log, missed }, TOPICS.announcements))
  p2p.handle(TOPICS.claims, ingestTopic({ ingest, log, missed, delivered: (m, from) => { statements.signedBy(m.keyId, from) } }, TOPICS.claims))
  p2p.handle(TOPICS.capabilities, capabilities.topic)
  p2p.handle(TOPICS.divergences, reportsTopic({ reports, log }))
  p2p.handle(TOPICS.notices, noticesTopic({ work, log }))
  p2p.handle(TOPICS.testResults, testResults.topic)
  if (nodeLog != null) p2p.handle(TOPICS.checkpoints, nodeLog.topic)

  const feed = init.http != null ? feedService({ logger, log, store, consensus, policy, metrics, builders: () => builders.list(), p2p, scheduler, backfill, lapsed: work.lapsed, ...nodeLog?.feed }, init.http) : undefined
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
    ...divergence != null ? [{ name: 'divergence', start: divergence.start, stop: divergence.stop }] : [],
    { name: 'followers', start: followers.start, stop: followers.stop },
    capabilities.publisher,
    ...feed != null ? [feed] : [],
    { name: 'back-fill', start: () => { backfill.start(); for (const peer of p2p.connectedPeers()) metPeer(peer) }, stop: () => { statements.stop(); backfill.stop() } }
  ]
  return daemonApi({ store, identity, policy, log, p2p, ingest, scheduler, builders, capabilities, backfill, followers, nodeLog, feed, claimsSigned, services, running: { get: () => running, set: (on) => { running = on } } })
}
