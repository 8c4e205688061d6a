import type { TrustPolicy } from '../../protocol/policy.js'
import type { Follower } from '../follow/index.js'
import type { Store, StoredAnnouncement, StoredMessage } from '../store/types.js'
import { announcerTrusted, evaluateRelease } from './evaluate.js'
import { newestTrusted, readRelease, storeReleaseSource, trustedAnnouncement } from './release.js'
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

/** How the HTTP API's answers name where they looked. */
const NODE_STORE = 'the store of this node'

/**
 * The verdicts for one tag, read through the store's indexes only: the release index for
 * the announcement, the commit index for its claims. Without `repository` the store looks
 * the tag up across all announcements; the service below keeps an index for that. A tag
 * with announcements, none trusted, is `NoTrustedAnnouncementError` (see `readRelease`).
 */
export async function consensusForTag (store: Store, policy: TrustPolicy, tag: string, opts: ConsensusOptions = {}): Promise<TagConsensus | undefined> {
  const source = storeReleaseSource(store, policy, NODE_STORE)
  if ((await source.announcements(tag, opts.repository)).length === 0) return undefined
  const { chosen, others, claims } = await readRelease(source, policy, tag, opts)
  return evaluateRelease({ policy, chosen, others, claims, published: opts.published, setAside: opts.setAside }).consensus
}

export interface ConsensusService {
  /**
   * The newest cursor this view has taken in (after its first load from the store) plus the
   * number of keys set aside. Both only grow, so equal numbers mean nothing changed, and
   * answers computed then are still right.
   */
  sync (): Promise<number>
  forTag (tag: string, opts?: { repository?: string }): Promise<TagConsensus | undefined>
  /** Announced releases, newest first, one per repository and tag. */
  releases (filter?: { repository?: string, tag?: string }): Promise<ReleaseSummary[]>
  /**
   * The view as a follower of the stored messages (`consensus`): its cursor is the newest
   * message taken in. Fed by the node's follower loop; without one, each answer first reads
   * what was stored after the cursor.
   */
  readonly follower: Follower
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

/** Messages read per page when an answer catches the view up itself. */
const CATCH_UP_PAGE = 256

/**
 * Consensus for the HTTP API, where the same tags are asked for again and again: keeps a
 * tag → announcements index and the computed verdicts per release. It loads the store's
 * announcements once (from the release index, up to the store's newest cursor); after that it
 * follows the message log from that cursor (`follower`): each new announcement is added and
 * the cached releases a new claim touches are dropped. An answer first takes in what the
 * follower loop has not handed over yet, so it is never older than the store, and a request
 * costs no read when the view is current.
 */
export function createConsensusService (components: ConsensusServiceComponents, init: ConsensusServiceInit = {}): ConsensusService {
  const { store, policy } = components
  const cacheSize = init.cacheSize ?? 2000
  /** tag → repository → announcements (by id). */
  const byTag = new Map<string, Map<string, Map<string, StoredAnnouncement>>>()
  /** repository+commit → releases announced at that commit. */
  const releasesOfCommit = new Map<string, Set<string>>()
  /** LRU by insertion order. */
  const cache = new Map<string, CacheEntry>()
  let highwater = 0
  /** The initial load hit the store's listing limit: fall back to the store for unknown tags. */
  let truncated = false
  let ready: Promise<void> | undefined
  let catchingUp: Promise<void> | undefined

  function addAnnouncement (m: StoredAnnouncement): void {
    const a = m.announcement
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
    } else {
      for (const rk of releasesOfCommit.get(commitKey(m.claim.target.repository, m.claim.target.commit)) ?? []) cache.delete(rk)
    }
    if (m.cursor > highwater) highwater = m.cursor
  }

  async function load (): Promise<void> {
    // The cursor first: what is stored while the announcements load is read again after it (deduplicated by id).
    const head = store.lastCursor()
    const all = await store.announcements()
    truncated = all.length >= 5000
    for (const m of all) addAnnouncement(m)
    if (head > highwater) highwater = head
  }

  async function loaded (): Promise<void> {
    ready ??= load()
    await ready
  }

  /** Takes in what was stored after the view's cursor (one reader at a time). */
  async function current (): Promise<void> {
    await loaded()
    let stuck = false
    while (highwater < store.lastCursor() && !stuck) {
      catchingUp ??= (async () => {
        const from = highwater
        const page = await store.messagesSince(from, CATCH_UP_PAGE)
        for (const m of page.items) apply(m)
        if (page.next > highwater) highwater = page.next
        stuck = highwater === from
      })().finally(() => { catchingUp = undefined })
      await catchingUp
    }
  }

  async function announcementsFor (tag: string, repository: string | undefined): Promise<StoredAnnouncement[]> {
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
    follower: {
      name: 'consensus',
      cursor: () => highwater,
      async apply (page) {
        // The first page loads the view (from the release index, up to the newest cursor): the rest is taken in as it comes.
        await loaded()
        for (const m of page) apply(m)
        const last = page.at(-1)
        if (last !== undefined && last.cursor > highwater) highwater = last.cursor
      }
    },

    async sync () {
      await current()
      return highwater + ((await components.setAside?.())?.size ?? 0)
    },

    async forTag (tag, opts = {}) {
      await current()
      const found = await announcementsFor(tag, opts.repository)
      if (found.length === 0) return undefined
      const { chosen, others } = trustedAnnouncement(policy, tag, found, `${NODE_STORE}${opts.repository !== undefined ? ` for ${opts.repository}` : ''}`)
      const a = chosen.announcement
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
      const claims = await storeReleaseSource(store, policy, NODE_STORE).claimsFor(a.repository, a.commit)
      const value = evaluateRelease({ policy, chosen, others, claims, published, setAside }).consensus
      cache.set(rk, { value, published, setAside })
      if (cache.size > cacheSize) cache.delete(cache.keys().next().value!)
      return value
    },

    async releases (filter = {}) {
      await current()
      const out: ReleaseSummary[] = []
      const tags = filter.tag !== undefined ? [filter.tag] : [...byTag.keys()]
      for (const tag of tags) {
        for (const [repository, anns] of byTag.get(tag) ?? []) {
          if (filter.repository !== undefined && repository !== filter.repository) continue
          // Only releases: a tag no announcer of the policy announced is none (see `readRelease`).
          const chosen = newestTrusted(policy, anns.values())
          if (chosen === undefined) continue
          const a = chosen.announcement
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
