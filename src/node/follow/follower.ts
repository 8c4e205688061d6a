import { componentLog, type ComponentLogger } from '../logger.js'
import { DuplicateFollowerError } from './errors.js'
import type { MessageKind, Page, Store, StoredMessage } from '../store/types.js'

/**
 * A view derived from the stored messages (the build queue, the divergence service, the transparency log):
 * it reads the message log from its own durable cursor, as a Tessera follower does, so a
 * message stored just before a crash is applied after the restart.
 */
export interface Follower {
  readonly name: string
  /**
   * Acts on the messages after the cursor, oldest first (only `kinds`, when given). The
   * cursor moves past them once this resolves; if it throws, the same messages come again
   * after the next stored message.
   */
  apply: (page: StoredMessage[]) => Promise<void>
  /** Only messages of these kinds are handed to `apply` (the cursor moves past the others). */
  kinds?: readonly MessageKind[]
  /**
   * Where a follower that keeps its own cursor (written atomically with its own data, as the
   * transparency log does) stands; the others' cursors are kept in the store's state.
   */
  cursor?: () => number
}

export interface FollowersComponents {
  store: Store
  logger?: ComponentLogger
  /** The views fed, each from its own cursor. */
  followers: readonly Follower[]
}

export interface FollowersInit {
  /** Messages read per page. Default 256. */
  pageSize?: number
}

export interface Followers {
  /** Loads the cursors and catches every follower up with the store. */
  start: () => Promise<void>
  /** Waits for the pass under way; no pass starts after. */
  stop: () => Promise<void>
  /** Something was stored: every follower reads on from its cursor (passes coalesce). */
  notify: () => void
  /** Settles when no pass is running or due. */
  idle: () => Promise<void>
  /**
   * Feeds one more follower from now on (a part started after the node, as `join --attest`),
   * from its saved cursor. Its name must be new.
   */
  add: (follower: Follower) => Promise<void>
  /** Each follower's lag: the newest stored cursor minus its own. */
  lag: () => Record<string, number>
}

const DEFAULT_PAGE_SIZE = 256
/**
 * A cursor moved past messages a follower had nothing to do with is written only this far
 * behind: a restart reads them again (and skips them), a flood of them costs no synced write each.
 */
const SKIPPED_BEFORE_WRITE = 1024
const stateKey = (name: string): string => `follower-cursor:${name}`

function isCursor (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/** One loop that feeds every follower from its cursor, at start and after each stored message. */
export function createFollowers (components: FollowersComponents, init: FollowersInit = {}): Followers {
  const { store } = components
  const followers = [...components.followers]
  const log = componentLog(components.logger, 'followers')
  const pageSize = init.pageSize ?? DEFAULT_PAGE_SIZE
  const cursors = new Map<string, number>()
  const written = new Map<string, number>()
  let running = false
  let pass: Promise<void> | undefined
  let again = false

  const cursorOf = (f: Follower): number => f.cursor?.() ?? cursors.get(f.name) ?? 0

  async function follow (f: Follower, read: (cursor: number) => Promise<Page<StoredMessage>>): Promise<void> {
    let cursor = cursorOf(f)
    while (running && cursor < store.lastCursor()) {
      const page = await read(cursor)
      if (page.next === cursor) return
      const items = f.kinds == null ? page.items : page.items.filter(m => f.kinds?.includes(m.kind))
      await f.apply(items)
      if (f.cursor != null) {
        const moved = f.cursor()
        if (moved <= cursor) return
        cursor = moved
      } else {
        cursor = page.next
        if (items.length > 0 || cursor - (written.get(f.name) ?? 0) >= SKIPPED_BEFORE_WRITE) {
          await store.setState(stateKey(f.name), cursor)
          written.set(f.name, cursor)
        }
        cursors.set(f.name, cursor)
      }
    }
  }

  async function runPass (): Promise<void> {
    // Followers at the same cursor (the usual case: all at the head) share each page read.
    const pages = new Map<number, Promise<Page<StoredMessage>>>()
    const read = async (cursor: number): Promise<Page<StoredMessage>> => {
      let page = pages.get(cursor)
      if (page === undefined) {
        page = store.messagesSince(cursor, pageSize)
        pages.set(cursor, page)
      }
      return await page
    }
    await Promise.all(followers.map(async f => {
      await follow(f, read).catch((err: unknown) => { log.warn({ err, follower: f.name }, 'a follower failed; it reads on after the next stored message') })
    }))
  }

  function schedule (): void {
    if (!running) return
    if (pass !== undefined) { again = true; return }
    pass = (async () => {
      do {
        again = false
        await runPass()
      } while (again && running)
    })().finally(() => { pass = undefined })
  }

  async function loadCursor (f: Follower): Promise<void> {
    if (f.cursor != null) return
    const saved = await store.getState(stateKey(f.name))
    cursors.set(f.name, isCursor(saved) ? saved : 0)
    written.set(f.name, isCursor(saved) ? saved : 0)
  }

  return {
    async start () {
      if (running) return
      for (const f of followers) await loadCursor(f)
      running = true
      schedule()
    },
    async add (f) {
      if (followers.some(o => o.name === f.name)) throw new DuplicateFollowerError(f.name)
      if (running) await loadCursor(f)
      followers.push(f)
      schedule()
    },
    async stop () {
      running = false
      await pass
    },
    notify: schedule,
    async idle () {
      while (pass !== undefined) await pass
    },
    lag () {
      const head = store.lastCursor()
      return Object.fromEntries(followers.map(f => [f.name, Math.max(0, head - cursorOf(f))]))
    }
  }
}
