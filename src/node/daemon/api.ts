import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Followers } from '../follow/index.js'
import type { Ingest } from '../ingest/index.js'
import type { Logger } from '../logger.js'
import { TOPICS, type P2PNode } from '../p2p/index.js'
import type { Scheduler } from '../scheduler/index.js'
import type { Store } from '../store/types.js'
import type { BackfillSync } from './backfill.js'
import type { BuilderRegistry } from './builders.js'
import type { NodeCapabilities } from './capabilities.js'
import { MessageRejectedError } from './errors.js'
import type { NodeLog } from './node-log.js'
import { startServices, stopServices, type Service } from './services.js'
import type { Daemon } from './types.js'

/** The parts of a node its API reads and drives. */
export interface DaemonParts {
  store: Store
  identity: SigningIdentity
  policy: TrustPolicy
  log: Logger
  p2p: P2PNode
  ingest: Ingest
  scheduler: Scheduler
  builders: Pick<BuilderRegistry, 'list'>
  capabilities: Pick<NodeCapabilities, 'own'>
  backfill: Pick<BackfillSync, 'syncNow' | 'stats'>
  followers: Pick<Followers, 'add' | 'lag'>
  nodeLog?: NodeLog | undefined
  feed?: { url: () => string | undefined } | undefined
  claimsSigned: () => number
  /** Started in this order, stopped in reverse. */
  services: readonly Service[]
  /** Whether the node runs (gossip is acted on); set by the `gossip` service, cleared first on stop. */
  running: { get: () => boolean, set: (on: boolean) => void }
}

/** What `createDaemon` returns: start and stop over the ordered services, and the node's API. */
export function daemonApi (parts: DaemonParts): Daemon {
  const { store, identity, policy, log, p2p, ingest, scheduler, builders, capabilities, backfill, followers, nodeLog, feed, services, running } = parts
  let stopping: Promise<void> | undefined
  return {
    peerId: p2p.peerId, keyId: identity.keyId, store, p2p, scheduler, ingest, tlog: nodeLog?.tlog,
    policy: () => policy,
    multiaddrs: () => p2p.multiaddrs(),
    async start () {
      if (running.get()) return
      if (policy.builders.length === 0 && policy.announcers.length === 0) log.warn('no trust policy configured: no builder or announcer is trusted, nothing is built and every verdict stays pending')
      await startServices(services)
      // `join` prints identity, addresses and platforms once, as its result.
      log.debug({ peerId: p2p.peerId, keyId: identity.keyId, addrs: p2p.multiaddrs(), builds: capabilities.own()?.platforms }, 'node started')
    },
    async stop () {
      stopping ??= (async () => {
        running.set(false)
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
    stats: () => ({ peers: p2p.connectedPeers().length, reachability: p2p.stats().reachability, gossip: p2p.stats().gossip, backfill: backfill.stats(), claimsSigned: parts.claimsSigned(), followers: followers.lag(), ...(nodeLog != null ? { tlog: nodeLog.stats() } : {}) }),
    follow: async (follower) => { await followers.add(follower) },
    onStored: (cb) => { ingest.addEventListener('stored', ({ detail }) => { cb(detail) }) }
  }
}
