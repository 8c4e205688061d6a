import { createHash } from 'node:crypto'
import type { Logger } from '../logger.js'
import type { ItemOutcome } from '../ingest/index.js'
import { BackfillError, type P2PNode, type BackfillRange, type BackfillRequest, type BackfillPage } from '../p2p/index.js'
import type { Store } from '../store/types.js'

export interface BackfillSyncInit {
  /** Items asked for per page. */
  pageSize?: number
  /**
   * Pages from one peer, per `minIntervalMs`, that bring nothing new and trusted (see
   * docs/network.md, "Pacing"). A page at least half of whose verified items are new and
   * trusted costs nothing, so an honest server is read at the speed of verification. A
   * catch-up that runs out goes on after `minIntervalMs` if it stored something new and
   * trusted; otherwise the rest waits for the next connection.
   */
  maxPages?: number
  /** Least time between two catch-ups from the same peer, however often it reconnects; also how often the page allowance refills. */
  minIntervalMs?: number
  /** Attempts when a peer is not ready to serve yet (it may still be starting). */
  attempts?: number
  /**
   * How often every connected peer is asked again (a page of nothing when nothing is new):
   * brings what gossip dropped when no rate limit said so.
   */
  resyncIntervalMs?: number
  /** Pages of a peer's newest items fetched first, newest page first, before its older history. */
  recentPages?: number
  /** Pages of a peer's announcements fetched before anything else (a claim is judged only under its release's announcement). */
  announcementPages?: number
  /** How soon after gossip dropped a message over a rate limit the delivering peer is asked for it. */
  missedDelayMs?: number
  /** Items remembered (by hash) as already brought by some peer, so another peer's copy is not verified again. */
  maxSeen?: number
  /**
   * Wait before the page after one that brought nothing new and trusted; it doubles with each
   * such page in a row (up to `minIntervalMs`) and resets with a page that does.
   */
  idleDelayMs?: number
}

export interface BackfillStats {
  pages: number
  stored: number
  rejected: number
  failures: number
  /** Catch-ups not started or cut short because the peer had sent forged items. */
  penalised: number
  /** Items handed to verification. */
  verified: number
  /** Items not verified because another peer's page had already brought the same bytes. */
  skipped: number
  /** Pages that brought nothing new and trusted: what the pacing counts against a server. */
  idlePages: number
  /** Catch-ups paused because a peer used its allowance of such pages. */
  paced: number
  /** Messages this node is behind its peers (the median over peers of what each has and this node has not read from it yet). */
  behind: number
  /** Items read by back-fill per second over the last 30 s. */
  perSecond: number
  /** `behind / perSecond`, in seconds; null when nothing is moving. */
  etaSeconds: number | null
  /** Peers a catch-up is running with now. */
  catchingUp: number
}

export interface BackfillSync {
  /**
   * Catches up from one peer since the cursor last seen from it, unless it did so less than
   * `minIntervalMs` ago or the peer is penalised. Never throws.
   */
  syncFrom: (peerId: string) => Promise<{ stored: number, rejected: number }>
  /** The same, whatever the interval (an operator's explicit request). */
  syncNow: (peerId: string) => Promise<{ stored: number, rejected: number }>
  /**
   * Gossip from `peerId` was dropped over a rate limit: catch up from it within
   * `missedDelayMs` (once per such delay, however many were dropped).
   */
  missed: (peerId: string) => void
  /** Starts the periodic catch-up with every connected peer. */
  start: () => void
  /** Cancels catch-ups scheduled to go on later and the periodic one. */
  stop: () => void
  stats: () => BackfillStats
}

const stateKey = (peerId: string): string => `backfill-cursor:${peerId}`
const tailKey = (peerId: string): string => `backfill-tail:${peerId}`

/** A range of a peer's cursors already read: (from, to]. */
interface Range { from: number, to: number }

function isCursor (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isRange (v: unknown): v is Range {
  const r = v as Range | undefined
  return r != null && isCursor(r.from) && isCursor(r.to) && r.from <= r.to
}

/**
 * Serves back-fill from the store's arrival order: each item is one envelope exactly as
 * stored. With `newest`, the newest items below `before` (down to `cursor`) instead of the
 * oldest after `cursor`; cursors are dense, so that range is read forward from its start.
 */
export function storeBackfillSource (store: Store): (req: BackfillRequest) => Promise<BackfillPage> {
  return async ({ cursor, limit, maxBytes, before, newest, kind }) => {
    const head = store.lastCursor()
    if (kind === 'announcement') {
      // Few (one a release), kept in an index of their own: read whole, the page cut after `cursor`.
      const items: Uint8Array[] = []
      let next = cursor
      let bytes = 0
      for (const m of (await store.announcements()).filter(a => a.cursor > cursor).slice(0, limit)) {
        const item = Buffer.from(m.envelopeJson, 'utf8')
        if (maxBytes != null && bytes + item.byteLength > maxBytes && items.length > 0) break
        bytes += item.byteLength
        items.push(item)
        next = m.cursor
      }
      return { items, next, from: cursor, head }
    }
    const to = Math.min(head, before != null ? before - 1 : head)
    if (to <= cursor) return { items: [], next: cursor, from: cursor, head }
    const start = newest === true ? Math.max(cursor, to - limit) : cursor
    const page = await store.messagesSince(start, limit)
    const within = page.items.filter(m => m.cursor <= to)
    const sized = within.map(m => ({ cursor: m.cursor, item: Buffer.from(m.envelopeJson, 'utf8') }))
    if (newest === true) {
      // The newest first: drop from the old end until the page fits, and say where it starts.
      let from = start
      let bytes = sized.reduce((n, s) => n + s.item.byteLength, 0)
      while (maxBytes != null && bytes > maxBytes && sized.length > 1) {
        const dropped = sized.shift() as { cursor: number, item: Buffer }
        bytes -= dropped.item.byteLength
        from = dropped.cursor
      }
      return { items: sized.map(s => s.item), next: to, from, head }
    }
    const items: Uint8Array[] = []
    let next = cursor
    let bytes = 0
    for (const s of sized) {
      if (maxBytes != null && bytes + s.item.byteLength > maxBytes && items.length > 0) break
      bytes += s.item.byteLength
      items.push(s.item)
      next = s.cursor
    }
    // Damaged entries at the end of a page were skipped by the store: move past them too.
    if (items.length === page.items.length) next = Math.max(next, Math.min(page.next, to))
    // Nothing cut by `before` beyond the last item: the page covers up to it.
    if (items.length === within.length && within.length < page.items.length) next = to
    return { items, next, from: cursor, head }
  }
}

/** One page fetched: what came, or why the catch-up stops. */
type Fetched = { page: BackfillPage, cursor: number } | { stop: 'failed' | 'paced' }

interface PeerPace {
  /** Pages that may still bring nothing new before the catch-up pauses. */
  credit: number
  /** Pages in a row that brought nothing new and trusted. */
  idle: number
  refilledAt: number
  /** What the peer has that this node has not read from it, at the last page; unknown before one that says. */
  behind?: number
}

/**
 * Pulls what peers stored since the cursor last seen from each, page by page: first the
 * peer's newest pages (recent releases, their announcements and claims), then its older
 * history. Every page goes through `accept` (the gossip check, then the store); the read
 * ranges are persisted after each page. Items another peer's page already brought are not
 * verified again.
 */
export function createBackfillSync (components: {
  store: Store
  p2p: Pick<P2PNode, 'backfill' | 'penalize' | 'penalised' | 'connectedPeers'>
  /** Verifies and stores the items of one page, in order; says of each whether it was stored, duplicate, or rejected, and whether a trusted key signed it. */
  accept: (items: readonly Uint8Array[], from: string) => Promise<ItemOutcome[]>
  log: Logger
}, init: BackfillSyncInit = {}): BackfillSync {
  const { store, p2p, log } = components
  const pageSize = init.pageSize ?? 128
  const maxPages = init.maxPages ?? 32
  const minIntervalMs = init.minIntervalMs ?? 60_000
  const attempts = init.attempts ?? 3
  const recentPages = init.recentPages ?? 8
  const announcementPages = init.announcementPages ?? 4
  // How far each peer's announcements were read; in memory: a restart reads them again, once.
  const announcementsRead = new Map<string, number>()
  const missedDelayMs = init.missedDelayMs ?? 5_000
  const maxSeen = init.maxSeen ?? 262_144
  const idleDelayMs = init.idleDelayMs ?? 250
  const inFlight = new Map<string, Promise<{ stored: number, rejected: number }>>()
  // When each peer's last catch-up started; bounded like the peers a node can hold at once.
  const lastRun = new Map<string, number>()
  const continuations = new Map<string, NodeJS.Timeout>()
  const missedTimers = new Map<string, NodeJS.Timeout>()
  // Peers whose catch-up must run once more after the running one (gossip dropped something meanwhile).
  const again = new Set<string>()
  // Peers whose pages only repeated what another peer's catch-up was bringing: they wait for it to end.
  const shadowed = new Set<string>()
  // Peers whose running catch-up last brought a page of new, trusted items: only such a peer is
  // waited on. A server of junk (or of repeats of what it sent before) leads nobody, so it cannot
  // hold honest catch-ups back by sending what their pages also carry.
  const leading = new Set<string>()
  const pace = new Map<string, PeerPace>()
  // Item hashes brought by some peer (insertion order: the oldest go first), and those being verified now.
  const seen = new Set<string>()
  const verifying = new Set<string>()
  // Items read per second: one [time, count] per page.
  const samples: Array<[number, number]> = []
  const totals = { pages: 0, stored: 0, rejected: 0, failures: 0, penalised: 0, verified: 0, skipped: 0, idlePages: 0, paced: 0 }
  let stopped = false
  let resync: NodeJS.Timeout | undefined

  function paceOf (peerId: string): PeerPace {
    let p = pace.get(peerId)
    const now = Date.now()
    if (p == null) {
      if (pace.size >= 10_000) pace.delete(pace.keys().next().value as string)
      p = { credit: maxPages, idle: 0, refilledAt: now }
      pace.set(peerId, p)
    } else if (now - p.refilledAt >= minIntervalMs) {
      p.credit = maxPages
      p.refilledAt = now
    }
    return p
  }

  function remember (hash: string): void {
    seen.add(hash)
    if (seen.size > maxSeen) seen.delete(seen.values().next().value as string)
  }

  /** Fetches one page (charging one page of the peer's allowance), retrying a peer that is not ready yet. */
  async function fetchPage (peerId: string, cursor: number, range: BackfillRange): Promise<Fetched> {
    let p = paceOf(peerId)
    if (p.idle > 0 && idleDelayMs > 0) {
      await new Promise(resolve => setTimeout(resolve, Math.min(minIntervalMs, idleDelayMs * 2 ** Math.min(p.idle - 1, 20))).unref())
      if (stopped) return { stop: 'failed' }
      p = paceOf(peerId)
    }
    if (p.credit < 1) return { stop: 'paced' }
    p.credit--
    for (let attempt = 1; ; attempt++) {
      try {
        return { page: await p2p.backfill(peerId, cursor, pageSize, range), cursor }
      } catch (err) {
        // Only a peer that is not ready yet is worth asking again; a broken limit is final.
        const transient = err instanceof BackfillError && (err.reason === 'dial-failed' || err.reason === 'busy' || err.reason === 'stream-closed')
        if (!transient || attempt >= attempts) {
          totals.failures++
          log.warn({ err, peer: peerId, cursor }, 'back-fill from peer failed')
          return { stop: 'failed' }
        }
        await new Promise(resolve => setTimeout(resolve, 250 * attempt))
      }
    }
  }

  /**
   * Verifies and stores one page's items that no other page brought, and settles the page's
   * cost: free when at least half of what was verified is new and trusted.
   */
  async function take (peerId: string, page: BackfillPage): Promise<{ stored: number, rejected: number, useful: number, repeated: boolean }> {
    totals.pages++
    const fresh: Uint8Array[] = []
    const hashes: string[] = []
    for (const item of page.items) {
      const hash = createHash('sha256').update(item).digest('base64')
      if (seen.has(hash) || verifying.has(hash)) { totals.skipped++; continue }
      verifying.add(hash)
      fresh.push(item)
      hashes.push(hash)
    }
    totals.verified += fresh.length
    let outcomes: ItemOutcome[]
    try {
      outcomes = fresh.length > 0 ? await components.accept(fresh, peerId) : []
    } finally {
      for (const h of hashes) verifying.delete(h)
    }
    let stored = 0
    let rejected = 0
    let useful = 0
    outcomes.forEach((o, i) => {
      if (o.outcome === 'rejected') { rejected++; return }
      remember(hashes[i] as string)
      if (o.outcome === 'stored') {
        stored++
        if (o.trusted) useful++
      }
    })
    totals.stored += stored
    totals.rejected += rejected
    const now = Date.now()
    samples.push([now, page.items.length])
    while (samples.length > 0 && (samples[0] as [number, number])[0] < now - 30_000) samples.shift()
    const p = paceOf(peerId)
    if (fresh.length > 0 && useful * 2 >= fresh.length) {
      p.credit++
      p.idle = 0
      leading.add(peerId)
    } else {
      if (fresh.length > 0 && leading.delete(peerId)) resumeShadowed()
      totals.idlePages++
      // Repeats of what another peer brought cost no verification, and an empty page ends the
      // catch-up: neither slows the server (the page allowance still counts them).
      if (fresh.length > 0) p.idle++
    }
    return { stored, rejected, useful, repeated: page.items.length > 0 && fresh.length === 0 }
  }

  /** What `peerId` has that this node has not read from it: its head less the ranges read. */
  function noteBehind (peerId: string, head: number | undefined, ...read: Array<Range | undefined>): void {
    if (head == null) return
    paceOf(peerId).behind = Math.max(0, head - read.reduce((n, r) => n + (r != null ? r.to - r.from : 0), 0))
  }

  async function run (peerId: string): Promise<{ stored: number, rejected: number, cut: boolean }> {
    if (p2p.penalised(peerId)) {
      totals.penalised++
      log.debug({ peer: peerId }, 'not catching up from a penalised peer')
      return { stored: 0, rejected: 0, cut: false }
    }
    let low = (await store.getState<number>(stateKey(peerId))) ?? 0
    if (!isCursor(low)) low = 0
    let tail = await store.getState<Range>(tailKey(peerId))
    if (!isRange(tail) || tail.from < low) tail = undefined
    let stored = 0
    let rejected = 0
    let useful = 0

    const save = async (): Promise<void> => {
      await store.setState(stateKey(peerId), low)
      await store.setState(tailKey(peerId), tail ?? null)
    }

    /**
     * Settles one fetched page; false when the catch-up must stop: the peer sent forgeries, or
     * its page only repeated what another peer's running catch-up brought (two servers of the
     * same history walk it in step: one is enough, the other resumes when it ends).
     */
    const settle = async (page: BackfillPage, opts: { shadow: boolean } = { shadow: true }): Promise<boolean> => {
      const r = await take(peerId, page)
      if (opts.shadow && r.repeated && [...leading].some(p => p !== peerId && inFlight.has(p) && !shadowed.has(p))) {
        shadowed.add(peerId)
        return false
      }
      stored += r.stored
      rejected += r.rejected
      useful += r.useful
      if (r.rejected > 0) {
        // A server that answers with forged items is treated as a gossip peer that sends
        // invalid messages: its score falls (it is disconnected below the graylist threshold)
        // and it is not asked again until the penalty has decayed. The page's valid items
        // were stored, but its range is not kept.
        p2p.penalize(peerId, r.rejected)
        totals.penalised++
        log.warn({ peer: peerId, forged: r.rejected, low }, 'back-fill peer sent forged items; stopped catching up from it')
        return false
      }
      return true
    }

    const done = (cut: boolean): { stored: number, rejected: number, cut: boolean } => {
      if (stored > 0 || rejected > 0) log.info({ peer: peerId, stored, rejected, cursor: low }, 'back-fill from peer done')
      return { stored, rejected, cut: cut && useful > 0 }
    }

    // 0. Announcements first: without its release's announcement no claim can be judged. A
    // page of repeats is no reason to wait for another peer here (they are few).
    for (let i = 0; i < announcementPages; i++) {
      const f = await fetchPage(peerId, announcementsRead.get(peerId) ?? 0, { kind: 'announcement' })
      if ('stop' in f) { if (f.stop === 'paced') totals.paced++; return done(f.stop === 'paced') }
      // None (left) to read: the question costs the server next to nothing, and no page of its allowance.
      if (f.page.items.length === 0) { paceOf(peerId).credit++; break }
      if (!await settle(f.page, { shadow: false })) return done(false)
      if (announcementsRead.size >= 10_000 && !announcementsRead.has(peerId)) announcementsRead.delete(announcementsRead.keys().next().value as string)
      announcementsRead.set(peerId, Math.max(announcementsRead.get(peerId) ?? 0, f.page.next))
      if (f.page.items.length < pageSize) break
    }

    // 1. The newest pages first, walking down to what was already read.
    const floor = Math.max(low, tail?.to ?? 0)
    let recent: Range | undefined
    for (let i = 0; i < recentPages; i++) {
      const f = await fetchPage(peerId, floor, { newest: true, ...(recent != null && recent.from + 1 > floor ? { before: recent.from + 1 } : {}) })
      if ('stop' in f) { if (f.stop === 'paced') totals.paced++; return done(f.stop === 'paced') }
      const from = f.page.from ?? floor
      const read: Range = recent == null ? { from, to: Math.max(f.page.next, floor) } : { from, to: recent.to }
      noteBehind(peerId, f.page.head, { from: 0, to: low }, tail, read.from >= Math.max(low, tail?.to ?? 0) ? read : undefined)
      if (!await settle(f.page)) return done(false)
      recent = read
      if (from <= floor || f.page.items.length === 0) break
    }
    if (recent != null) {
      if (recent.from <= floor) {
        // Joined what was read before: extend it.
        if (tail != null && floor === tail.to) tail = { from: tail.from, to: recent.to }
        else low = Math.max(low, recent.to)
      } else {
        // A gap remains below: the older range read before (if any) is read again later.
        tail = recent
      }
      await save()
    }

    // 2. The older history, oldest first, up to what step 1 read, then past it.
    const jump = (): void => {
      if (tail != null && low >= tail.from) {
        low = Math.max(low, tail.to)
        tail = undefined
      }
    }
    const rangeFor = (): BackfillRange => tail != null ? { before: tail.from + 1 } : {}
    jump()
    let pending: Promise<Fetched> | undefined = fetchPage(peerId, low, rangeFor())
    while (pending != null) {
      const f: Fetched = await pending
      pending = undefined
      if ('stop' in f) {
        // Asked ahead before the page in hand refunded its cost: ask again now that it has.
        if (f.stop === 'paced' && paceOf(peerId).credit >= 1) { pending = fetchPage(peerId, low, rangeFor()); continue }
        if (f.stop === 'paced') totals.paced++
        await save()
        return done(f.stop === 'paced')
      }
      const next = f.page.next
      // A cursor that does not move forward ends the catch-up (a peer cannot make us loop).
      const moves = f.page.items.length > 0 && isCursor(next) && next > f.cursor
      if (moves) {
        // Ask for the next page while this one is verified: the server's read and the
        // transfer overlap the verification.
        const ahead = tail != null && next >= tail.from ? Math.max(next, tail.to) : next
        pending = fetchPage(peerId, ahead, tail != null && ahead < tail.from ? { before: tail.from + 1 } : {})
      }
      noteBehind(peerId, f.page.head, { from: 0, to: moves ? next : low }, tail)
      if (!await settle(f.page)) { void pending?.catch(() => {}); return done(false) }
      if (!moves) break
      low = next
      jump()
      await save()
    }
    return done(false)
  }

  function sync (peerId: string, force: boolean): Promise<{ stored: number, rejected: number }> {
    const running = inFlight.get(peerId)
    if (running != null) {
      if (force) again.add(peerId)
      return running
    }
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
      // Paused while still storing new trusted items: go on when the allowance refills, if still connected.
      if (r.cut) syncLater(continuations, peerId, minIntervalMs)
      return { stored: r.stored, rejected: r.rejected }
    }, (err: unknown) => {
      totals.failures++
      log.warn({ err, peer: peerId }, 'back-fill failed')
      return { stored: 0, rejected: 0 }
    }).finally(() => {
      inFlight.delete(peerId)
      leading.delete(peerId)
      if (again.delete(peerId) && !stopped) void sync(peerId, true)
      resumeShadowed()
    })
    inFlight.set(peerId, p)
    return p
  }

  /** No catch-up left that others wait on (it ended, or stopped bringing anything new): they go on. */
  function resumeShadowed (): void {
    if (stopped || [...leading].some(p => inFlight.has(p) && !shadowed.has(p))) return
    for (const peer of [...shadowed]) {
      if (inFlight.has(peer)) continue
      shadowed.delete(peer)
      if (p2p.connectedPeers().includes(peer)) void sync(peer, true)
    }
  }

  /** A catch-up from `peerId` after `delayMs`, if still connected then; one pending per peer in `timers`. */
  function syncLater (timers: Map<string, NodeJS.Timeout>, peerId: string, delayMs: number): void {
    if (stopped || timers.has(peerId)) return
    const t = setTimeout(() => {
      timers.delete(peerId)
      if (!stopped && p2p.connectedPeers().includes(peerId)) void sync(peerId, true)
    }, delayMs)
    t.unref()
    timers.set(peerId, t)
  }

  function median (values: number[]): number {
    if (values.length === 0) return 0
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor((sorted.length - 1) / 2)] as number
  }

  return {
    syncFrom: async (peerId) => await sync(peerId, false),
    syncNow: async (peerId) => await sync(peerId, true),
    missed (peerId) { syncLater(missedTimers, peerId, missedDelayMs) },
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
      for (const t of missedTimers.values()) clearTimeout(t)
      missedTimers.clear()
    },
    stats () {
      const connected = new Set(p2p.connectedPeers())
      // Peers that have said how much they hold; the median, so one peer cannot inflate it. A
      // peer waiting on another's catch-up of the same history is as far behind as that one.
      const led = Math.min(...[...leading].flatMap(p => inFlight.has(p) ? [pace.get(p)?.behind ?? Number.POSITIVE_INFINITY] : []))
      const behind = median([...pace.entries()].flatMap(([peer, p]) => connected.has(peer) && p.behind != null ? [shadowed.has(peer) ? Math.min(p.behind, led) : p.behind] : []))
      const now = Date.now()
      const recent = samples.filter(([t]) => t >= now - 30_000)
      const items = recent.reduce((n, [, c]) => n + c, 0)
      const span = recent.length > 0 ? Math.max(1, (now - (recent[0] as [number, number])[0]) / 1000) : 0
      const perSecond = span > 0 ? Math.round(items / span) : 0
      return {
        ...totals,
        behind,
        perSecond,
        etaSeconds: behind > 0 && perSecond > 0 ? Math.ceil(behind / perSecond) : (behind > 0 ? null : 0),
        catchingUp: inFlight.size
      }
    }
  }
}
