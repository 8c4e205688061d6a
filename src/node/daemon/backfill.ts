import type { Logger } from '../logger.js'
import { BackfillError, type P2PNode, type BackfillRequest, type BackfillPage } from '../p2p/index.js'
import type { Store } from '../store/types.js'

export interface BackfillSyncInit {
  /** Items asked for per page. */
  pageSize?: number
  /** Pages fetched from one peer in one catch-up; the rest waits for the next connection. */
  maxPages?: number
  /** Attempts when a peer is not ready to serve yet (it may still be starting). */
  attempts?: number
}

export interface BackfillStats {
  pages: number
  stored: number
  rejected: number
  failures: number
}

export interface BackfillSync {
  /** Catches up from one peer since the cursor last seen from it. Never throws. */
  syncFrom: (peerId: string) => Promise<{ stored: number, rejected: number }>
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
  p2p: P2PNode
  /** Verifies and stores the items of one page, in order; says of each whether it was stored, duplicate, or rejected. */
  accept: (items: readonly Uint8Array[], from: string) => Promise<Array<'stored' | 'duplicate' | 'rejected'>>
  log: Logger
}, init: BackfillSyncInit = {}): BackfillSync {
  const { store, p2p, log } = components
  const pageSize = init.pageSize ?? 128
  const maxPages = init.maxPages ?? 1000
  const attempts = init.attempts ?? 3
  const inFlight = new Map<string, Promise<{ stored: number, rejected: number }>>()
  const totals: BackfillStats = { pages: 0, stored: 0, rejected: 0, failures: 0 }

  async function run (peerId: string): Promise<{ stored: number, rejected: number }> {
    let cursor = (await store.getState<number>(stateKey(peerId))) ?? 0
    if (!Number.isSafeInteger(cursor) || cursor < 0) cursor = 0
    let stored = 0
    let rejected = 0
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
            return { stored, rejected }
          }
          await new Promise(resolve => setTimeout(resolve, 250 * attempt))
        }
      }
      totals.pages++
      for (const outcome of await components.accept(result.items, peerId)) {
        if (outcome === 'stored') { stored++; totals.stored++ } else if (outcome === 'rejected') { rejected++; totals.rejected++ }
      }
      // A cursor that does not move forward ends the catch-up (a peer cannot make us loop).
      if (result.items.length === 0 || !Number.isSafeInteger(result.next) || result.next <= cursor) break
      cursor = result.next
      await store.setState(stateKey(peerId), cursor)
    }
    if (stored > 0 || rejected > 0) log.info({ peer: peerId, stored, rejected, cursor }, 'back-fill from peer done')
    return { stored, rejected }
  }

  return {
    async syncFrom (peerId) {
      const running = inFlight.get(peerId)
      if (running != null) return await running
      const p = run(peerId).catch((err: unknown) => {
        totals.failures++
        log.warn({ err, peer: peerId }, 'back-fill failed')
        return { stored: 0, rejected: 0 }
      }).finally(() => inFlight.delete(peerId))
      inFlight.set(peerId, p)
      return await p
    },
    stats: () => ({ ...totals })
  }
}
