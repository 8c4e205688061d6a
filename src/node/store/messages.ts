import { announcementTargets } from '../../protocol/announcement.js'
import { ValidationError } from '../../protocol/errors.js'
import type { DecodedMessage } from '../../protocol/messages.js'
import type { Target } from '../../protocol/types.js'
import { checkKey, clampLimit, cursorKey, idsInRange, prefixRange, SEP, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'
import { targetIndexKey } from './target-index.js'
import type { MessageFilter, Page, PutResult, StoredMessage } from './types.js'

type Kind = StoredMessage['kind']

/** The message log's sublevels: the messages by id and their indexes (each index entry → id). */
export interface MessageLevels {
  messages: Sublevel // id → StoredMessage JSON
  byCursor: Sublevel // cursor → id
  byTarget: Sublevel // targetKey NUL cursor → id
  byCommit: Sublevel // repository NUL commit NUL cursor → id
  byCommitKey: Sublevel // repository NUL commit NUL keyId NUL cursor → id (claims)
  byBuilder: Sublevel // keyId NUL cursor → id
  byRelease: Sublevel // repository NUL tag NUL cursor → id (announcements)
  targetList: Sublevel // targetKey → Target JSON
  meta: Sublevel // counters
}

export function messageLevels (ctx: StoreContext, meta: Sublevel): MessageLevels {
  const sub = (name: string): Sublevel => ctx.sublevel(name)
  return {
    messages: sub('msg'),
    byCursor: sub('cur'),
    byTarget: sub('tgt'),
    byCommit: sub('cmt'),
    byCommitKey: sub('cky'),
    byBuilder: sub('bld'),
    byRelease: sub('ann'),
    targetList: sub('tls'),
    meta
  }
}

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

/** Index entries a stored message adds to its kind's indexes (the cursor and builder ones are common). */
function indexEntries (l: MessageLevels, stored: StoredMessage, ck: string): Array<{ type: 'put', sublevel: Sublevel, key: string, value: string }> {
  const id = stored.id
  if (stored.kind === 'announcement') {
    const a = stored.announcement
    return [
      { type: 'put', sublevel: l.byRelease, key: a.repository + SEP + a.tag + SEP + ck, value: id },
      ...announcementTargets(a).map(target => ({ type: 'put' as const, sublevel: l.targetList, key: targetIndexKey(target), value: JSON.stringify(target) }))
    ]
  }
  const t = stored.claim.target
  const tk = targetIndexKey(t)
  return [
    { type: 'put', sublevel: l.byTarget, key: tk + SEP + ck, value: id },
    { type: 'put', sublevel: l.byCommit, key: t.repository + SEP + t.commit + SEP + ck, value: id },
    { type: 'put', sublevel: l.byCommitKey, key: t.repository + SEP + t.commit + SEP + stored.keyId + SEP + ck, value: id },
    { type: 'put', sublevel: l.targetList, key: tk, value: JSON.stringify(t) }
  ]
}

/**
 * The message log: verified announcements and claims in arrival order, each written with its
 * index entries in one synced batch, read by cursor, target, commit, builder or release.
 */
export class MessageLog {
  private lastCursor = 0
  readonly counts: Record<Kind, number> = { announcement: 0, claim: 0 }

  constructor (private readonly ctx: StoreContext, private readonly l: MessageLevels, private readonly maxClaims: number) {}

  /** Reads the counters written with the last message. */
  async open (): Promise<void> {
    this.lastCursor = await this.ctx.readCounter(this.l.meta, 'cursor')
    this.counts.announcement = await this.ctx.readCounter(this.l.meta, 'count:announcement')
    this.counts.claim = await this.ctx.readCounter(this.l.meta, 'count:claim')
  }

  cursor (): number {
    return this.lastCursor
  }

  parseMessage (id: string, text: string | undefined): StoredMessage | undefined {
    const m = this.ctx.parse<StoredMessage>('msg', id, text)
    if (m == null) return undefined
    // Valid JSON with the wrong shape is damage too.
    if (typeof m !== 'object' || typeof m.id !== 'string' || typeof m.cursor !== 'number' || typeof m.envelopeJson !== 'string' ||
      !(m.kind === 'announcement' ? typeof m.announcement === 'object' : m.kind === 'claim' && typeof m.claim === 'object')) {
      return this.ctx.damaged('msg', id)
    }
    return m
  }

  async put (msg: DecodedMessage, envelopeJson: string): Promise<PutResult> {
    this.ctx.assertOpen()
    validateIncoming(msg, envelopeJson)
    const { l } = this
    return await this.ctx.write(async () => {
      const existing = await l.messages.get(msg.id)
      if (existing != null) {
        // A damaged entry is left in place: bad input never overwrites what is stored.
        return { stored: false, cursor: this.parseMessage(msg.id, existing)?.cursor ?? 0 }
      }
      const cursor = this.lastCursor + 1
      const ck = cursorKey(cursor)
      const base = { id: msg.id, cursor, keyId: msg.keyId, envelopeJson, receivedAt: new Date().toISOString() }
      const stored: StoredMessage = msg.kind === 'announcement'
        ? { ...base, kind: 'announcement', announcement: msg.announcement }
        : { ...base, kind: 'claim', claim: msg.claim }
      // One synced batch: the message and its indexes land together, and survive a crash once acknowledged.
      await this.ctx.db.batch([
        { type: 'put', sublevel: l.messages, key: msg.id, value: JSON.stringify(stored) },
        { type: 'put', sublevel: l.byCursor, key: ck, value: msg.id },
        { type: 'put', sublevel: l.byBuilder, key: msg.keyId + SEP + ck, value: msg.id },
        { type: 'put', sublevel: l.meta, key: 'cursor', value: String(cursor) },
        { type: 'put', sublevel: l.meta, key: `count:${msg.kind}`, value: String(this.counts[msg.kind] + 1) },
        ...indexEntries(l, stored, ck)
      ], { sync: true })
      this.lastCursor = cursor
      this.counts[msg.kind]++
      return { stored: true, cursor, message: stored }
    })
  }

  async has (id: string): Promise<boolean> {
    this.ctx.assertOpen()
    if (typeof id !== 'string' || id.length === 0) return false
    return await this.l.messages.has(id)
  }

  async get (id: string): Promise<StoredMessage | undefined> {
    this.ctx.assertOpen()
    if (typeof id !== 'string' || id.length === 0) return undefined
    return this.parseMessage(id, await this.l.messages.get(id))
  }

  async since (cursor: number, limit: number, filter?: MessageFilter): Promise<Page<StoredMessage>> {
    this.ctx.assertOpen()
    const from = Number.isSafeInteger(cursor) && cursor > 0 ? cursor : 0
    const max = clampLimit(limit, STORE_LIMITS.maxPage)
    if (max === 0) return { items: [], next: from }
    // Narrow through an index when the filter allows; the full filter is applied after.
    let level = this.l.byCursor
    let prefix = ''
    if (filter?.keyId != null) {
      level = this.l.byBuilder; prefix = filter.keyId + SEP
    } else if (filter?.repository != null && filter.commit != null) {
      level = this.l.byCommit; prefix = filter.repository + SEP + filter.commit + SEP
    }
    const items: StoredMessage[] = []
    let next = from
    let scanned = 0
    // Index entries in batches of what is still wanted, each batch's messages read in one
    // getMany: one read per message in turn made a page as slow as its count of reads.
    const iterator = level.iterator({ gt: prefix + cursorKey(from), lt: prefix + '\xff' })
    try {
      while (items.length < max && scanned < STORE_LIMITS.maxScan) {
        const entries = await iterator.nextv(Math.min(max - items.length, STORE_LIMITS.maxScan - scanned))
        if (entries.length === 0) break
        scanned += entries.length
        const texts = await this.l.messages.getMany(entries.map(([, id]) => id))
        entries.forEach(([key, id], i) => {
          const c = Number(key.slice(prefix.length))
          next = Number.isSafeInteger(c) ? c : next
          const m = this.parseMessage(id, texts[i])
          if (m != null && matches(m, filter)) items.push(m)
        })
      }
    } finally {
      await iterator.close()
    }
    // Index pages by the byCommit/byBuilder prefix are still in cursor order, so next stays monotonic.
    return { items, next }
  }

  /** The entries of `ids` that are of `kind` (an index of one kind holds only that kind, unless damaged). */
  private async load<K extends Kind> (ids: string[], kind: K): Promise<Array<Extract<StoredMessage, { kind: K }>>> {
    if (ids.length === 0) return []
    const texts = await this.l.messages.getMany(ids)
    const out: Array<Extract<StoredMessage, { kind: K }>> = []
    for (let i = 0; i < ids.length; i++) {
      const m = this.parseMessage(ids[i]!, texts[i])
      if (m?.kind === kind) out.push(m as Extract<StoredMessage, { kind: K }>)
    }
    return out
  }

  async claimsForTarget (targetKey: string): Promise<Array<Extract<StoredMessage, { kind: 'claim' }>>> {
    this.ctx.assertOpen()
    if (typeof targetKey !== 'string' || targetKey.length === 0) return []
    return await this.load(await idsInRange(this.l.byTarget, prefixRange(targetKey + SEP), this.maxClaims), 'claim')
  }

  async claimsForCommit (repository: string, commit: string, keys?: Iterable<string>): Promise<Array<Extract<StoredMessage, { kind: 'claim' }>>> {
    this.ctx.assertOpen()
    const base = repository + SEP + commit + SEP
    // The named keys' claims come each from their own index range, so however many claims
    // other keys sent for the commit, they cannot crowd these out of the bounded read.
    const ids = new Set<string>()
    for (const keyId of new Set(keys ?? [])) {
      if (typeof keyId !== 'string' || keyId.length === 0 || keyId.includes(SEP)) continue
      for (const id of await idsInRange(this.l.byCommitKey, prefixRange(base + keyId + SEP), this.maxClaims)) ids.add(id)
    }
    for (const id of await idsInRange(this.l.byCommit, prefixRange(base), this.maxClaims)) ids.add(id)
    return (await this.load([...ids], 'claim')).sort((a, b) => a.cursor - b.cursor)
  }

  async announcements (filter?: { repository?: string, tag?: string }): Promise<Array<Extract<StoredMessage, { kind: 'announcement' }>>> {
    this.ctx.assertOpen()
    let prefix = ''
    if (filter?.repository != null) {
      prefix = filter.repository + SEP
      if (filter.tag != null) prefix += filter.tag + SEP
    }
    const found = await this.load(await idsInRange(this.l.byRelease, prefixRange(prefix), STORE_LIMITS.maxAnnouncements), 'announcement')
    const list = filter?.repository == null && filter?.tag != null ? found.filter(m => m.announcement.tag === filter.tag) : found
    return list.sort((a, b) => a.cursor - b.cursor)
  }

  async targets (): Promise<Target[]> {
    this.ctx.assertOpen()
    const out: Target[] = []
    for await (const [key, value] of this.l.targetList.iterator({ limit: STORE_LIMITS.maxListing })) {
      const t = this.ctx.parse<Target>('tls', key, value)
      if (t != null) out.push(t)
    }
    return out
  }
}
