import type { Logger } from '../logger.js'
import { BackfillError, type P2PNode, type BackfillRequest, type BackfillPage } from '../p2p/index.js'
import type { Store } from '../store/types.js'

export interface BackfillSyncInit {
  /** Items asked for per page. */
  pageSize?: number
  /**
   * Pages fetched from one peer in one catch-up. A catch-up cut short by this bound goes on
   * after `minIntervalMs` if it stored something new; otherwise the rest waits for the next
   * connection.
   */
  maxPages?: number
  /** Least time between two catch-ups from the same peer, however often it reconnects. */
  minIntervalMs?: number
  /** Attempts when a peer is not ready to serve yet (it may still be starting). */
  attempts?: number
  /**
   * How often every connected peer is asked again (a page of nothing when nothing is new):
   * brings what gossip dropped over a rate limit without waiting for a reconnect.
   */
  resyncIntervalMs?: number
}

export interface BackfillStats {
  pages: number
  stored: number
  rejected: number
  failures: number
  /** Catch-ups not started or cut short because the peer had sent forged items. */
  penalised: number
}

export interface BackfillSync {
  /**
   * Catches up from one peer since the cursor last seen from it, unless it did so less than
   * `minIntervalMs` ago or the peer is penalised. Never throws.
   */
  syncFrom: (peerId: string) => Promise<{ stored: number, rejected: number }>
  /** The same, whatever the interval (an operator's explicit request). */
  syncNow: (peerId: string) => Promise<{ stored: number, rejected: number }>
  /** Starts the periodic catch-up with every connected peer. */
  start: () => void
  /** Cancels catch-ups scheduled to go on later and the periodic one. */
  stop: () => void
  stats: () => BackfillStats
}

const stateKey = (peerId: string): string => `backfill-cursor:${peerId}`

/** Serves back-fill from the store's arrival order: each item is one envelope exactly as stored. */
export function storeBackfillSource (store: Store): (req: BackfillRequest) => Promise<BackfillPage> {
  return async ({ cursor, limit, maxBytes }) => {
    const page = await store.messagesSince(cursor, limit)
    const items: Uint8Array[] = []
    let next = cursor
    let bytes = 0
    for (const m of page.items) {
      const item = Buffer.from(m.envelopeJson, 'utf8')
      if (maxBytes != null && bytes + item.byteLength > maxBytes && items.length > 0) break
      bytes += item.byteLength
      items.push(item)
      next = m.cursor
    }
    // Damaged entries at the end of a page were skipped by the store: move past them too.
    if (items.length === page.items.length) next = Math.max(next, page.next)
    return { items, next }
  }
}

/**
 * Pulls what a peer stored since the cursor last seen from it, page by page. Every page goes
 * through `accept` (the gossip check, then the store); the cursor is persisted after each page.
 */
export function createBackfillSync (components: {
  store: Store
  p2p: Pick<P2PNode, 'backfill' | 'penalize' | 'penalised' | 'connectedPeers'>
  /** Verifies and stores the items of one page, in order; says of each whether it was stored, duplicate, or rejected. */
  accept: (items: readonly Uint8Array[], from: string) => Promise<Array<'stored' | 'duplicate' | 'rejected'>>
  log: Logger
}, init: BackfillSyncInit = {}): BackfillSync {
  const { store, p2p, log } = components
  const pageSize = init.pageSize ?? 128
  const maxPages = init.maxPages ?? 32
  const minIntervalMs = init.minIntervalMs ?? 60_000
  const attempts = init.attempts ?? 3
  const inFlight = new Map<string, Promise<{ stored: number, rejected: number }>>()
  // When each peer's last catch-up started; bounded like the peers a node can hold at once.
  const lastRun = new Map<string, number>()
  const continuations = new Map<string, NodeJS.Timeout>()
  const totals: BackfillStats = { pages: 0, stored: 0, rejected: 0, failures: 0, penalised: 0 }
  let stopped = false
  let resync: NodeJS.Timeout | undefined

  async function run (peerId: string): Promise<{ stored: number, rejected: number, cut: boolean }> {
    if (p2p.penalised(peerId)) {
      totals.penalised++
      log.debug({ peer: peerId }, 'not catching up from a penalised peer')
      return { stored: 0, rejected: 0, cut: false }
    }
    let cursor = (await store.getState<number>(stateKey(peerId))) ?? 0
    if (!Number.isSafeInteger(cursor) || cursor < 0) cursor = 0
    let stored = 0
    let rejected = 0
    let cut = true
    for (let page = 0; page < maxPages; page++) {
      let result: BackfillPage | undefined
      for (let attempt = 1; result == null; attempt++) {
        try {
          result = await p2p.backfill(peerId, cursor, pageSize)
        } catch (err) {
          // Only a peer that is not ready yet is worth asking again; a broken limit is final.
          const transient = err instanceof BackfillError && (err.reason === 'dial-failed' || err.reason === 'busy' || err.reason === 'stream-closed')
          if (!transient || attempt >= attempts) {
            totals.failures++
            log.warn({ err, peer: peerId, cursor }, 'back-fill from peer failed')
            return { stored, rejected, cut: false }
          }
          await new Promise(resolve => setTimeout(resolve, 250 * attempt))
        }
      }
      totals.pages++
      let forged = 0
      for (const outcome of await components.accept(result.items, peerId)) {
        if (outcome === 'stored') { stored++; totals.stored++ } else if (outcome === 'rejected') { forged++; rejected++; totals.rejected++ }
      }
      if (forged > 0) {
        // A server that answers with forged items is treated as a gossip peer that sends
        // invalid messages: its score falls (it is disconnected below the graylist threshold)
        // and it is not asked again until the penalty has decayed. The page's valid items
        // were stored, but its cursor is not kept.
        p2p.penalize(peerId, forged)
        totals.penalised++
        log.warn({ peer: peerId, forged, cursor }, 'back-fill peer sent forged items; stopped catching up from it')
        return { stored, rejected, cut: false }
      }
      // A cursor that does not move forward ends the catch-up (a peer cannot make us loop).
      if (result.items.length === 0 || !Number.isSafeInteger(result.next) || result.next <= cursor) { cut = false; break }
      cursor = result.next
      await store.setState(stateKey(peerId), cursor)
    }
    if (stored > 0 || rejected > 0) log.info({ peer: peerId, stored, rejected, cursor }, 'back-fill from peer done')
    return { stored, rejected, cut }
  }

  function sync (peerId: string, force: boolean): Promise<{ stored: number, rejected: number }> {
    const running = inFlight.get(peerId)
    if (running != null) return running
    const now = Date.now()
    const last = lastRun.get(peerId)
    // A peer that reconnects over and over gets one catch-up per interval, not one per connection.
    if (!force && last != null && now - last < minIntervalMs) return Promise.resolve({ stored: 0, rejected: 0 })
    lastRun.delete(peerId)
    if (lastRun.size >= 10_000) {
      const oldest = lastRun.keys().next().value
      if (oldest != null) lastRun.delete(oldest)
    }
    lastRun.set(peerId, now)
    const p = run(peerId).then(r => {
      // Cut at maxPages while still storing new items: go on later, if still connected.
      if (r.cut && r.stored > 0 && !stopped && !continuations.has(peerId)) {
        const t = setTimeout(() => {
          continuations.delete(peerId)
          if (!stopped && p2p.connectedPeers().includes(peerId)) void sync(peerId, true)
        }, minIntervalMs)
        t.unref()
        continuations.set(peerId, t)
      }
      return { stored: r.stored, rejected: r.rejected }
    }, (err: unknown) => {
      totals.failures++
      log.warn({ err, peer: peerId }, 'back-fill failed')
      return { stored: 0, rejected: 0 }
    }).finally(() => inFlight.delete(peerId))
    inFlight.set(peerId, p)
    return p
  }

  return {
    syncFrom: async (peerId) => await sync(peerId, false),
    syncNow: async (peerId) => await sync(peerId, true),
    start () {
      stopped = false
      if (resync != null) return
      resync = setInterval(() => {
        for (const peer of p2p.connectedPeers()) void sync(peer, false)
      }, init.resyncIntervalMs ?? 10 * 60_000)
      resync.unref()
    },
    stop () {
      stopped = true
      clearInterval(resync)
      resync = undefined
      for (const t of continuations.values()) clearTimeout(t)
      continuations.clear()
    },
    stats: () => ({ ...totals })
  }
}
