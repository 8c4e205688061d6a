import type { TrustPolicy } from '../../protocol/policy.js'
import type { Store, StoredMessage } from '../store/types.js'
import { AmbiguousTagError } from './errors.js'
import { announcerTrusted, evaluateRelease } from './evaluate.js'
import type { PublishedLookup } from './published.js'
import type { SetAsideLookup } from './set-aside.js'
import type { TagConsensus } from './types.js'

export interface ConsensusOptions {
  repository?: string
  /** `targetKey` → digest the registry publishes; targets not in it are `unknown`. */
  published?: ReadonlyMap<string, string>
  /** Builder keys not counted, with the reason (see `judge`). */
  setAside?: ReadonlyMap<string, string>
}

/** One announced release, as listed for the dashboard. */
export interface ReleaseSummary {
  repository: string
  tag: string
  commit: string
  announcedAt: string
  announcementId: string
  keyId: string
  trusted: boolean
  targets: Array<{ variant: string, platform: string }>
}

/**
 * Picks the announcement the verdicts rest on: the newest by a key the policy trusts to
 * announce, else the newest of all (shown as untrusted). Several repositories with the same
 * tag and none named is an error, not a guess.
 */
export function pickAnnouncement (policy: TrustPolicy, tag: string, found: StoredMessage[]): { chosen: StoredMessage, others: StoredMessage[] } {
  const anns = found.filter(m => m.announcement != null && m.announcement.tag === tag)
  const repositories = [...new Set(anns.map(m => m.announcement!.repository))]
  if (repositories.length > 1) throw new AmbiguousTagError(tag, repositories.sort())
  const newestFirst = [...anns].sort((a, b) => b.cursor - a.cursor)
  const chosen = newestFirst.find(m => announcerTrusted(policy, m.keyId)) ?? newestFirst[0]
  if (chosen === undefined) throw new Error('pickAnnouncement needs at least one announcement')
  return { chosen, others: newestFirst.filter(m => m !== chosen) }
}

/**
 * The verdicts for one tag, read through the store's indexes only: the release index for
 * the announcement, the commit index for its claims. Without `repository` the store looks
 * the tag up across all announcements; the service below keeps an index for that.
 */
export async function consensusForTag (store: Store, policy: TrustPolicy, tag: string, opts: ConsensusOptions = {}): Promise<TagConsensus | undefined> {
  const found = await store.announcements(opts.repository !== undefined ? { repository: opts.repository, tag } : { tag })
  if (found.length === 0) return undefined
  const { chosen, others } = pickAnnouncement(policy, tag, found)
  const a = chosen.announcement!
  const claims = await store.claimsForCommit(a.repository, a.commit, policy.builderKeys.keys())
  return evaluateRelease({ policy, chosen, others, claims, published: opts.published, setAside: opts.setAside }).consensus
}

export interface ConsensusService {
  /**
   * Reads what the store took in since the last look and returns a version: the newest
   * cursor seen plus the number of keys set aside. Both only grow, so equal numbers mean
   * nothing changed, and answers computed then are still right.
   */
  sync (): Promise<number>
  forTag (tag: string, opts?: { repository?: string }): Promise<TagConsensus | undefined>
  /** Announced releases, newest first, one per repository and tag. */
  releases (filter?: { repository?: string, tag?: string }): Promise<ReleaseSummary[]>
}

export interface ConsensusServiceComponents {
  store: Store
  policy: TrustPolicy
  published?: PublishedLookup | undefined
  /** Builder keys the verdicts do not count (those whose log the node's witness proved split). */
  setAside?: SetAsideLookup | undefined
}

export interface ConsensusServiceInit {
  /** Releases whose verdicts are kept computed. Default 2000. */
  cacheSize?: number
}

/** Messages read per step when catching up with the store. */
const CATCH_UP_PAGE = 1000

interface CacheEntry {
  value: TagConsensus
  published: ReadonlyMap<string, string> | undefined
  setAside: ReadonlyMap<string, string> | undefined
}

function releaseKey (repository: string, tag: string): string {
  return `${repository}\x00${tag}`
}

function commitKey (repository: string, commit: string): string {
  return `${repository}\x00${commit}`
}

function sameMap (a: ReadonlyMap<string, string> | undefined, b: ReadonlyMap<string, string> | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined || a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

/**
 * Consensus for the HTTP API, where the same tags are asked for again and again: keeps a
 * tag → announcements index and the computed verdicts per release. Before each answer it
 * reads the messages stored since its last look (one cursor-index seek when nothing is new)
 * and drops the cached releases they touch, so an answer is never older than the store.
 */
export function createConsensusService (components: ConsensusServiceComponents, init: ConsensusServiceInit = {}): ConsensusService {
  const { store, policy } = components
  const cacheSize = init.cacheSize ?? 2000
  /** tag → repository → announcements (by id). */
  const byTag = new Map<string, Map<string, Map<string, StoredMessage>>>()
  /** repository+commit → releases announced at that commit. */
  const releasesOfCommit = new Map<string, Set<string>>()
  /** LRU by insertion order. */
  const cache = new Map<string, CacheEntry>()
  let highwater = 0
  /** The initial load hit the store's listing limit: fall back to the store for unknown tags. */
  let truncated = false
  let ready: Promise<void> | undefined
  let running: Promise<void> | undefined
  let queued: Promise<void> | undefined

  function addAnnouncement (m: StoredMessage): void {
    const a = m.announcement
    if (a == null) return
    let repos = byTag.get(a.tag)
    if (repos === undefined) byTag.set(a.tag, repos = new Map())
    let anns = repos.get(a.repository)
    if (anns === undefined) repos.set(a.repository, anns = new Map())
    anns.set(m.id, m)
    const rk = releaseKey(a.repository, a.tag)
    const ck = commitKey(a.repository, a.commit)
    let set = releasesOfCommit.get(ck)
    if (set === undefined) releasesOfCommit.set(ck, set = new Set())
    set.add(rk)
    cache.delete(rk)
  }

  function apply (m: StoredMessage): void {
    if (m.kind === 'announcement') {
      addAnnouncement(m)
    } else if (m.claim != null) {
      for (const rk of releasesOfCommit.get(commitKey(m.claim.target.repository, m.claim.target.commit)) ?? []) cache.delete(rk)
    }
  }

  async function load (): Promise<void> {
    // The cursor first: anything stored while the announcements load is seen again by catch-up (and deduplicated by id).
    highwater = (await store.stats()).messages
    const all = await store.announcements()
    truncated = all.length >= 5000
    for (const m of all) addAnnouncement(m)
  }

  async function readNew (): Promise<void> {
    for (;;) {
      const page = await store.messagesSince(highwater, CATCH_UP_PAGE)
      for (const m of page.items) apply(m)
      if (page.next <= highwater) return
      highwater = page.next
      if (page.items.length < CATCH_UP_PAGE) return
    }
  }

  /**
   * At most one read in flight and one queued behind it: a caller joins the queued read,
   * which starts after it arrived, so it still sees everything stored before it asked,
   * and a burst of requests costs two index reads, not one each.
   */
  function catchUp (): Promise<void> {
    if (queued !== undefined) return queued
    const start = (): Promise<void> => {
      const run = (async () => {
        ready ??= load()
        await ready
        await readNew()
      })()
      running = run
      void run.catch(() => undefined).then(() => { if (running === run) running = undefined })
      return run
    }
    if (running === undefined) return start()
    const next = running.catch(() => undefined).then(() => {
      queued = undefined
      return start()
    })
    queued = next
    return next
  }

  async function announcementsFor (tag: string, repository: string | undefined): Promise<StoredMessage[]> {
    const repos = byTag.get(tag)
    if (repos === undefined) {
      if (!truncated) return []
      const found = await store.announcements(repository !== undefined ? { repository, tag } : { tag })
      for (const m of found) addAnnouncement(m)
      return found
    }
    if (repository !== undefined) return [...(repos.get(repository)?.values() ?? [])]
    return [...repos.values()].flatMap(m => [...m.values()])
  }

  return {
    async sync () {
      await catchUp()
      return highwater + ((await components.setAside?.())?.size ?? 0)
    },

    async forTag (tag, opts = {}) {
      await catchUp()
      const found = await announcementsFor(tag, opts.repository)
      if (found.length === 0) return undefined
      const { chosen, others } = pickAnnouncement(policy, tag, found)
      const a = chosen.announcement!
      const rk = releaseKey(a.repository, tag)
      const published = components.published !== undefined
        ? await components.published({ repository: a.repository, tag, commit: a.commit, targets: a.targets })
        : undefined
      const setAside = await components.setAside?.()
      const hit = cache.get(rk)
      if (hit !== undefined && hit.value.announcement.id === chosen.id && sameMap(hit.published, published) && sameMap(hit.setAside, setAside)) {
        // Refresh the LRU position.
        cache.delete(rk)
        cache.set(rk, hit)
        return hit.value
      }
      const claims = await store.claimsForCommit(a.repository, a.commit, policy.builderKeys.keys())
      const value = evaluateRelease({ policy, chosen, others, claims, published, setAside }).consensus
      cache.set(rk, { value, published, setAside })
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!)
      return value
    },

    async releases (filter = {}) {
      await catchUp()
      const out: ReleaseSummary[] = []
      const tags = filter.tag !== undefined ? [filter.tag] : [...byTag.keys()]
      for (const tag of tags) {
        for (const [repository, anns] of byTag.get(tag) ?? []) {
          if (filter.repository !== undefined && repository !== filter.repository) continue
          const { chosen } = pickAnnouncement(policy, tag, [...anns.values()])
          const a = chosen.announcement!
          out.push({
            repository,
            tag,
            commit: a.commit,
            announcedAt: a.announcedAt,
            announcementId: chosen.id,
            keyId: chosen.keyId,
            trusted: announcerTrusted(policy, chosen.keyId),
            targets: a.targets
          })
        }
      }
      return out.sort((x, y) => y.announcedAt.localeCompare(x.announcedAt) || x.tag.localeCompare(y.tag))
    }
  }
}
