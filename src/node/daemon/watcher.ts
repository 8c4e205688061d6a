import { NekoError } from '../../protocol/errors.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { signAnnouncement } from '../../protocol/messages.js'
import { git, repositoryUrl, SourceError } from '../rebuilder/index.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import type { Store } from '../store/types.js'
import { prepareAnnouncement } from './announce.js'
import type { Daemon } from './types.js'

export interface TagWatcherInit {
  /** git URL or local path of the repository to watch. */
  url: string
  intervalMs: number
  /** Recipe to announce with; default: the repository's own (or its Dockerfile). */
  recipe?: string
  /** Tags one poll announces at most; the rest follow on the next polls. */
  maxPerPoll?: number
}

export interface TagWatcher {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** One poll now; returns the tags announced. */
  poll: () => Promise<string[]>
}

/** Most tags remembered per repository. */
const MAX_SEEN = 10_000

/** `git ls-remote --tags` output → tag names (peeled `^{}` entries folded into their tag). */
function parseLsRemoteTags (text: string): string[] {
  const tags = new Set<string>()
  for (const line of text.split('\n')) {
    const m = /^[0-9a-f]{40,64}\trefs\/tags\/(.+?)(\^\{\})?$/.exec(line.trim())
    if (m != null) tags.add(m[1]!)
  }
  return [...tags]
}

/**
 * `join --watch`: polls a repository's tags and announces each new one, signed with the
 * announcer key. The first poll of a repository only records the tags already there (they
 * are history, not news); seen tags are kept in node state across restarts.
 */
export function createTagWatcher (components: { daemon: Pick<Daemon, 'announce'>, store: Store, identity: SigningIdentity, logger?: ComponentLogger }, init: TagWatcherInit): TagWatcher {
  const log = componentLog(components.logger, 'watch')
  const stateKey = `watch-tags:${init.url}`
  const maxPerPoll = init.maxPerPoll ?? 5
  let timer: NodeJS.Timeout | undefined
  let polling: Promise<string[]> | undefined
  let stopped = false

  async function pollOnce (): Promise<string[]> {
    const out = await git(['ls-remote', '--tags', repositoryUrl(init.url)], { timeoutMs: 60_000 })
    const tags = parseLsRemoteTags(out)
    const seenList = await components.store.getState<string[]>(stateKey)
    if (!Array.isArray(seenList)) {
      await components.store.setState(stateKey, tags.slice(-MAX_SEEN))
      log.info({ url: init.url, tags: tags.length }, 'watching: existing tags recorded, new tags will be announced')
      return []
    }
    const seen = new Set(seenList)
    const fresh = tags.filter(t => !seen.has(t)).slice(0, maxPerPoll)
    const announced: string[] = []
    for (const tag of fresh) {
      if (stopped) break
      try {
        const a = await prepareAnnouncement({ repository: init.url, tag, ...(init.recipe != null ? { recipe: init.recipe } : {}) })
        const r = await components.daemon.announce(signAnnouncement(a, components.identity))
        log.info({ tag, commit: a.commit, id: r.id, targets: a.targets.length }, 'new tag announced')
        announced.push(tag)
        seen.add(tag)
      } catch (err) {
        // A source that cannot be fetched may work next time; anything else will not.
        if (err instanceof SourceError || !(err instanceof NekoError)) {
          log.warn({ err, tag }, 'announcing a new tag failed; will retry')
        } else {
          log.error({ err, tag }, 'cannot announce this tag; skipping it')
          seen.add(tag)
        }
      }
    }
    await components.store.setState(stateKey, [...seen].slice(-MAX_SEEN))
    return announced
  }

  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      void watcher.poll().finally(schedule)
    }, init.intervalMs)
    timer.unref()
  }

  const watcher: TagWatcher = {
    async start () {
      stopped = false
      await watcher.poll()
      schedule()
    },
    async stop () {
      stopped = true
      if (timer != null) clearTimeout(timer)
      await polling?.catch(() => {})
    },
    async poll () {
      if (polling != null) return await polling
      polling = pollOnce().catch((err: unknown) => {
        log.warn({ err, url: init.url }, 'polling tags failed')
        return []
      }).finally(() => { polling = undefined })
      return await polling
    }
  }
  return watcher
}
