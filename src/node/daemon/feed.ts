import { createFeedServer, type FeedServerComponents, type FeedServerInit } from '../http/server.js'
import type { Logger } from '../logger.js'
import type { P2PNode } from '../p2p/index.js'
import { jobsView, type Scheduler } from '../scheduler/index.js'
import type { Work } from '../work/index.js'
import type { BackfillSync } from './backfill.js'
import type { Service } from './services.js'

export interface FeedServiceComponents extends Omit<FeedServerComponents, 'jobs' | 'peers' | 'host' | 'catchUp'> {
  log: Logger
  p2p: Pick<P2PNode, 'peerId' | 'stats' | 'peerList'>
  scheduler: Scheduler
  backfill: Pick<BackfillSync, 'stats'>
  /** Builders whose work notices keep expiring without a claim. */
  lapsed?: Work['lapsed']
}

/** The HTTP feed as a node service: it listens while the node runs and serves the node's parts. */
export function feedService (components: FeedServiceComponents, init: FeedServerInit): Service & { url: () => string | undefined } {
  const { log, p2p, scheduler, backfill, lapsed, ...rest } = components
  const feed = createFeedServer({
    ...rest,
    jobs: async ({ recent }) => await jobsView({ store: rest.store, scheduler, ...(lapsed != null ? { lapsed } : {}) }, { recent }),
    host: () => scheduler.health(),
    peers: () => {
      const { reachability, relayRefused, relayedBytes } = p2p.stats()
      return { peerId: p2p.peerId, ...reachability, relayRefused, relayedBytes, peers: p2p.peerList() }
    },
    catchUp: () => { const b = backfill.stats(); return { behind: b.behind, perSecond: b.perSecond, etaSeconds: b.etaSeconds } }
  }, init)
  let url: string | undefined
  return {
    name: 'HTTP feed',
    async start () {
      url = (await feed.start()).url
      log.info({ url }, 'HTTP feed listening')
    },
    stop: async () => { await feed.stop() },
    url: () => url
  }
}
