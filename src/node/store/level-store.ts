import { Level } from 'level'
import { announcementTargets } from '../../protocol/announcement.js'
import { LimitError, ValidationError } from '../../protocol/errors.js'
import type { DecodedMessage } from '../../protocol/messages.js'
import type { Target } from '../../protocol/types.js'
import { componentLog, type LoggerComponents } from '../logger.js'
import { isLockError, StoreClosedError, StoreLockedError, StoreOpenError } from './errors.js'
import { STORE_LIMITS } from './limits.js'
import { targetIndexKey } from './target-index.js'
import type { Job, JobState, MessageFilter, Store, StoreStats, StoredMessage } from './types.js'

export interface StoreInit {
  /** Directory of the LevelDB database; created when missing. */
  path: string
  /** Most claims one query returns (`STORE_LIMITS.maxClaimsPerQuery` by default). */
  maxClaimsPerQuery?: number
}

export type StoreComponents = LoggerComponents

/** Index keys join parts with NUL, which no id, key id, repository or tag contains. */
const SEP = '\x00'
const JOB_STATES: JobState[] = ['queued', 'running', 'done', 'failed', 'refused', 'broken', 'covered']

/** Fixed-width cursors sort lexicographically in numeric order. */
function cursorKey (cursor: number): string {
  return cursor.toString().padStart(16, '0')
}

function checkKey (field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new ValidationError(field, 'must be a non-empty string')
  if (value.length > STORE_LIMITS.maxKeyLength) throw new LimitError(field, STORE_LIMITS.maxKeyLength, value.length)
  if (value.includes(SEP)) throw new ValidationError(field, 'must not contain NUL')
  return value
}

function clampLimit (limit: number, max: number): number {
  if (!Number.isFinite(limit) || limit <= 0) return 0
  return Math.min(Math.floor(limit), max)
}

/** Upper bound for a prefix range. */
function prefixRange (prefix: string): { gte: string, lt: string } {
  return { gte: prefix, lt: prefix + '\xff' }
}

type Kind = StoredMessage['kind']

function matches (m: StoredMessage, f: MessageFilter | undefined): boolean {
  if (f == null) return true
  if (f.kind != null && m.kind !== f.kind) return false
  if (f.keyId != null && m.keyId !== f.keyId) return false
  const { repository, commit, tag } = m.kind === 'announcement' ? m.announcement : m.claim.target
  if (f.repository != null && repository !== f.repository) return false
  if (f.commit != null && commit !== f.commit) return false
  if (f.tag != null && tag !== f.tag) return false
  return true
}

/**
 * Opens (or creates) the node's level store. Every message is written together with its index
 * entries in one synced batch; writes go through one queue so cursors are allocated atomically.
 */
export async function createStore (init: StoreInit, components: StoreComponents = {}): Promise<Store> {
  const log = componentLog(components.logger, 'store')
  const db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  try {
    await db.open()
  } catch (err) {
    if (isLockError(err)) throw new StoreLockedError(init.path)
    throw new StoreOpenError(init.path, (err as { cause?: unknown }).cause ?? err)
  }
  const sub = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const messages = sub('msg') // id → StoredMessage JSON
  const byCursor = sub('cur') // cursor → id
  const byTarget = sub('tgt') // targetKey NUL cursor → id
  const byCommit = sub('cmt') // repository NUL commit NUL cursor → id
  const byCommitKey = sub('cky') // repository NUL commit NUL keyId NUL cursor → id (claims)
  const byBuilder = sub('bld') // keyId NUL cursor → id
  const byRelease = sub('ann') // repository NUL tag NUL cursor → id (announcements)
  const targetList = sub('tls') // targetKey → Target JSON
  const jobs = sub('job') // job id → Job JSON
  const state = sub('sta') // key → JSON
  const meta = sub('meta') // counters

  const maxClaims = Math.max(1, Math.min(init.maxClaimsPerQuery ?? STORE_LIMITS.maxClaimsPerQuery, STORE_LIMITS.maxClaimsPerQuery))
  let closed = false
  /** Keys of entries that failed to decode; a set so a re-read does not count twice. */
  const damagedKeys = new Set<string>()
  let writeChain: Promise<unknown> = Promise.resolve()

  const readCounter = async (key: string): Promise<number> => {
    const v = await meta.get(key)
    const n = v == null ? 0 : Number(v)
    return Number.isSafeInteger(n) && n >= 0 ? n : 0
  }
  let lastCursor = await readCounter('cursor')
  const counts: Record<Kind, number> = { announcement: await readCounter('count:announcement'), claim: await readCounter('count:claim') }
  await indexClaimsByKey()

  /**
   * Stores written before the commit-and-key index existed get it once, on open, from the
   * claims they hold: without it their trusted claims could be read only among everyone's.
   */
  async function indexClaimsByKey (): Promise<void> {
    if (await meta.get('index:commit-key') === '1') return
    let ops: Array<{ type: 'put', sublevel: typeof byCommitKey, key: string, value: string }> = []
    for await (const [key, id] of byCommit.iterator()) {
      const text = await messages.get(id)
      if (text == null) continue
      let m: StoredMessage
      try {
        m = JSON.parse(text) as StoredMessage
      } catch {
        continue
      }
      if (typeof m.keyId !== 'string') continue
      const last = key.lastIndexOf(SEP)
      ops.push({ type: 'put', sublevel: byCommitKey, key: key.slice(0, last + 1) + m.keyId + key.slice(last), value: id })
      if (ops.length >= 1000) {
        await db.batch(ops)
        ops = []
      }
    }
    await db.batch([...ops, { type: 'put', sublevel: meta, key: 'index:commit-key', value: '1' }], { sync: true })
  }

  /** Serializes writes: cursor allocation and the "already stored?" check must not interleave. */
  function serialize<T> (fn: () => Promise<T>): Promise<T> {
    const run = writeChain.then(fn, fn)
    writeChain = run.catch(() => undefined)
    return run
  }

  function assertOpen (): void {
    if (closed) throw new StoreClosedError('the store is closed')
  }

  function parse<T> (where: string, key: string, text: string | undefined): T | undefined {
    if (text == null) return undefined
    try {
      return JSON.parse(text) as T
    } catch {
      const k = `${where}:${key}`
      if (!damagedKeys.has(k)) {
        damagedKeys.add(k)
        log.warn({ sublevel: where, key }, 'damaged store entry skipped')
      }
      return undefined
    }
  }

  function parseMessage (id: string, text: string | undefined): StoredMessage | undefined {
    const m = parse<StoredMessage>('msg', id, text)
    if (m == null) return undefined
    // Valid JSON with the wrong shape is damage too.
    if (typeof m !== 'object' || typeof m.id !== 'string' || typeof m.cursor !== 'number' || typeof m.envelopeJson !== 'string' ||
      !(m.kind === 'announcement' ? typeof m.announcement === 'object' : m.kind === 'claim' && typeof m.claim === 'object')) {
      const k = `msg:${id}`
      if (!damagedKeys.has(k)) {
        damagedKeys.add(k)
        log.warn({ sublevel: 'msg', key: id }, 'damaged store entry skipped')
      }
      return undefined
    }
    return m
  }

  /** The entries of `ids` that are of `kind` (an index of one kind holds only that kind, unless damaged). */
  async function loadIds<K extends Kind> (ids: string[], kind: K): Promise<Array<Extract<StoredMessage, { kind: K }>>> {
    if (ids.length === 0) return []
    const texts = await messages.getMany(ids)
    const out: Array<Extract<StoredMessage, { kind: K }>> = []
    for (let i = 0; i < ids.length; i++) {
      const m = parseMessage(ids[i]!, texts[i])
      if (m?.kind === kind) out.push(m as Extract<StoredMessage, { kind: K }>)
    }
    return out
  }

  async function idsInRange (level: typeof byCursor, range: { gte?: string, gt?: string, lt: string }, limit: number): Promise<string[]> {
    const ids: string[] = []
    for await (const id of level.values({ ...range, limit })) ids.push(id)
    return ids
  }

  /**
   * The message is verified (its type says so): what is checked here is what the indexes
   * need of it, and its shape, for a caller that cast its way past the type.
   */
  function validateIncoming (msg: DecodedMessage, envelopeJson: string): void {
    checkKey('id', msg.id)
    checkKey('keyId', msg.keyId)
    if (msg.kind !== 'announcement' && msg.kind !== 'claim') throw new ValidationError('kind', 'must be "announcement" or "claim"')
    if (typeof envelopeJson !== 'string') throw new ValidationError('envelopeJson', 'must be a string')
    if (msg.kind === 'announcement') {
      const a = msg.announcement
      if (a == null) throw new ValidationError('announcement', 'required for kind "announcement"')
      checkKey('announcement.repository', a.repository)
      checkKey('announcement.tag', a.tag)
      checkKey('announcement.commit', a.commit)
    } else {
      const c = msg.claim
      if (c == null) throw new ValidationError('claim', 'required for kind "claim"')
      checkKey('claim.target.repository', c.target?.repository)
      checkKey('claim.target.commit', c.target?.commit)
      checkKey('claim.target.variant', c.target?.variant)
      checkKey('claim.target.platform', c.target?.platform)
    }
  }

  const store: Store = {
    async putMessage (msg, envelopeJson) {
      assertOpen()
      validateIncoming(msg, envelopeJson)
      return await serialize(async () => {
        assertOpen()
        const existing = await messages.get(msg.id)
        if (existing != null) {
          const old = parseMessage(msg.id, existing)
          // A damaged entry is left in place: bad input never overwrites what is stored.
          return { stored: false, cursor: old?.cursor ?? 0 }
        }
        const cursor = lastCursor + 1
        const ck = cursorKey(cursor)
        const base = { id: msg.id, cursor, keyId: msg.keyId, envelopeJson, receivedAt: new Date().toISOString() }
        const stored: StoredMessage = msg.kind === 'announcement'
          ? { ...base, kind: 'announcement', announcement: msg.announcement }
          : { ...base, kind: 'claim', claim: msg.claim }
        const ops: Array<{ type: 'put', sublevel: typeof messages, key: string, value: string }> = [
          { type: 'put', sublevel: messages, key: msg.id, value: JSON.stringify(stored) },
          { type: 'put', sublevel: byCursor, key: ck, value: msg.id },
          { type: 'put', sublevel: byBuilder, key: msg.keyId + SEP + ck, value: msg.id },
          { type: 'put', sublevel: meta, key: 'cursor', value: String(cursor) },
          { type: 'put', sublevel: meta, key: `count:${msg.kind}`, value: String(counts[msg.kind] + 1) }
        ]
        if (stored.kind === 'announcement') {
          const a = stored.announcement
          ops.push({ type: 'put', sublevel: byRelease, key: a.repository + SEP + a.tag + SEP + ck, value: msg.id })
          for (const target of announcementTargets(a)) {
            ops.push({ type: 'put', sublevel: targetList, key: targetIndexKey(target), value: JSON.stringify(target) })
          }
        } else {
          const t = stored.claim.target
          const tk = targetIndexKey(t)
          ops.push({ type: 'put', sublevel: byTarget, key: tk + SEP + ck, value: msg.id })
          ops.push({ type: 'put', sublevel: byCommit, key: t.repository + SEP + t.commit + SEP + ck, value: msg.id })
          ops.push({ type: 'put', sublevel: byCommitKey, key: t.repository + SEP + t.commit + SEP + msg.keyId + SEP + ck, value: msg.id })
          ops.push({ type: 'put', sublevel: targetList, key: tk, value: JSON.stringify(t) })
        }
        // One synced batch: the message and its indexes land together, and survive a crash once acknowledged.
        await db.batch(ops, { sync: true })
        lastCursor = cursor
        counts[msg.kind]++
        return { stored: true, cursor, message: stored }
      })
    },

    lastCursor: () => lastCursor,

    async hasMessage (id) {
      assertOpen()
      if (typeof id !== 'string' || id.length === 0) return false
      return (await messages.has(id))
    },

    async getMessage (id) {
      assertOpen()
      if (typeof id !== 'string' || id.length === 0) return undefined
      return parseMessage(id, await messages.get(id))
    },

    async messagesSince (cursor, limit, filter) {
      assertOpen()
      const from = Number.isSafeInteger(cursor) && cursor > 0 ? cursor : 0
      const max = clampLimit(limit, STORE_LIMITS.maxPage)
      if (max === 0) return { items: [], next: from }
      // Narrow through an index when the filter allows; the full filter is applied after.
      let level = byCursor
      let prefix = ''
      if (filter?.keyId != null) {
        level = byBuilder; prefix = filter.keyId + SEP
      } else if (filter?.repository != null && filter.commit != null) {
        level = byCommit; prefix = filter.repository + SEP + filter.commit + SEP
      }
      const items: StoredMessage[] = []
      let next = from
      let scanned = 0
      const range = { gt: prefix + cursorKey(from), lt: prefix + '\xff' }
      // Index entries in chunks of what is still wanted, each chunk's messages read in one
      // getMany: one read per message in turn made a page as slow as its count of reads.
      const iterator = level.iterator(range)
      try {
        while (items.length < max && scanned < STORE_LIMITS.maxScan) {
          const entries = await iterator.nextv(Math.min(max - items.length, STORE_LIMITS.maxScan - scanned))
          if (entries.length === 0) break
          scanned += entries.length
          const texts = await messages.getMany(entries.map(([, id]) => id))
          entries.forEach(([key, id], i) => {
            const c = Number(key.slice(prefix.length))
            next = Number.isSafeInteger(c) ? c : next
            const m = parseMessage(id, texts[i])
            if (m != null && matches(m, filter)) items.push(m)
          })
        }
      } finally {
        await iterator.close()
      }
      // Index pages by the byCommit/byBuilder prefix are still in cursor order, so next stays monotonic.
      return { items, next }
    },

    async claimsForTarget (targetKey) {
      assertOpen()
      if (typeof targetKey !== 'string' || targetKey.length === 0) return []
      return await loadIds(await idsInRange(byTarget, prefixRange(targetKey + SEP), maxClaims), 'claim')
    },

    async claimsForCommit (repository, commit, keys) {
      assertOpen()
      const base = repository + SEP + commit + SEP
      // The named keys' claims come each from their own index range, so however many claims
      // other keys sent for the commit, they cannot crowd these out of the bounded read.
      const ids = new Set<string>()
      for (const keyId of new Set(keys ?? [])) {
        if (typeof keyId !== 'string' || keyId.length === 0 || keyId.includes(SEP)) continue
        for (const id of await idsInRange(byCommitKey, prefixRange(base + keyId + SEP), maxClaims)) ids.add(id)
      }
      for (const id of await idsInRange(byCommit, prefixRange(base), maxClaims)) ids.add(id)
      return (await loadIds([...ids], 'claim')).sort((a, b) => a.cursor - b.cursor)
    },

    async announcements (filter) {
      assertOpen()
      let prefix = ''
      if (filter?.repository != null) {
        prefix = filter.repository + SEP
        if (filter.tag != null) prefix += filter.tag + SEP
      }
      const found = await loadIds(await idsInRange(byRelease, prefixRange(prefix), STORE_LIMITS.maxAnnouncements), 'announcement')
      const list = filter?.repository == null && filter?.tag != null ? found.filter(m => m.announcement.tag === filter.tag) : found
      return list.sort((a, b) => a.cursor - b.cursor)
    },

    async targets () {
      assertOpen()
      const out: Target[] = []
      for await (const [key, value] of targetList.iterator({ limit: STORE_LIMITS.maxListing })) {
        const t = parse<Target>('tls', key, value)
        if (t != null) out.push(t)
      }
      return out
    },

    async putJob (job) {
      assertOpen()
      checkKey('job.id', job.id)
      if (!JOB_STATES.includes(job.state)) throw new ValidationError('job.state', `must be one of ${JOB_STATES.join(', ')}`)
      await serialize(async () => {
        assertOpen()
        await db.batch([{ type: 'put', sublevel: jobs, key: job.id, value: JSON.stringify(job) }], { sync: true })
      })
    },

    async getJob (id) {
      assertOpen()
      if (typeof id !== 'string' || id.length === 0) return undefined
      return parse<Job>('job', id, await jobs.get(id))
    },

    async listJobs (jobState) {
      assertOpen()
      const out: Job[] = []
      for await (const [key, value] of jobs.iterator({ limit: STORE_LIMITS.maxListing })) {
        const j = parse<Job>('job', key, value)
        if (j != null && (jobState == null || j.state === jobState)) out.push(j)
      }
      return out
    },

    async getState<T = unknown> (key: string): Promise<T | undefined> {
      assertOpen()
      checkKey('state key', key)
      return parse<T>('sta', key, await state.get(key))
    },

    async setState (key, value) {
      assertOpen()
      checkKey('state key', key)
      const text = JSON.stringify(value)
      if (text === undefined) throw new ValidationError(`state ${key}`, 'must be JSON-serializable')
      const bytes = Buffer.byteLength(text)
      if (bytes > STORE_LIMITS.maxStateBytes) throw new LimitError(`state ${key}`, STORE_LIMITS.maxStateBytes, bytes)
      await serialize(async () => {
        assertOpen()
        await db.batch([{ type: 'put', sublevel: state, key, value: text }], { sync: true })
      })
    },

    async stats (): Promise<StoreStats> {
      assertOpen()
      const jobsByState: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, refused: 0, broken: 0, covered: 0 }
      for (const j of await store.listJobs()) {
        if (j.state in jobsByState) jobsByState[j.state]++
      }
      return {
        messages: counts.announcement + counts.claim,
        announcements: counts.announcement,
        claims: counts.claim,
        jobsByState,
        damaged: damagedKeys.size
      }
    },

    async close () {
      if (closed) return
      // Let acknowledged and queued writes finish before the database goes away.
      await writeChain
      closed = true
      await db.close()
    }
  }
  return store
}
