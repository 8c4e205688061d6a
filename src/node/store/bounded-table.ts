import { createHash } from 'node:crypto'
import { cursorKey, prefixRange, SEP, type StoreContext, type Sublevel } from './context.js'

/** The id of a signed statement kept beside the log: hex sha256 of its envelope JSON as stored and gossiped. */
export function statementIdOf (envelopeJson: string | Uint8Array): string {
  return createHash('sha256').update(envelopeJson).digest('hex')
}

export type Op = { type: 'put', sublevel: Sublevel, key: string, value: string } | { type: 'del', sublevel: Sublevel, key: string }

/** What a bounded table keeps per entry: at least its place in save order. */
export interface SeqEntry { seq: number }

/** An index that files each entry under a prefix of its own, then its place in save order. */
export interface PrefixIndex<E> {
  level: Sublevel
  prefix: (e: E) => string
}

export interface BoundedTableSpec<E extends SeqEntry> {
  /** The entries' sublevel name, as damaged entries are reported. */
  name: string
  entries: Sublevel // id → E JSON
  bySeq: Sublevel // seq → id (save order, newest last)
  /** The group an entry counts against (its target): group NUL seq → id. */
  byGroup: PrefixIndex<E>
  /** At most one entry per unique key (a pair of claims, a signer of a target): unique → id. */
  byUnique: { level: Sublevel, key: (e: E) => string }
  /** Further indexes readers ask by. */
  indexes?: ReadonlyArray<PrefixIndex<E>>
  meta: Sublevel
  /** Keys in `meta` of the save counter (the version) and the number of entries. */
  counters: { seq: string, count: string }
  /** Whether a decoded entry has the shape readers rely on. */
  isEntry: (e: E) => boolean
  limits: () => { perGroup: number, all: number }
}

/**
 * Signed statements derived from the log and kept beside it (divergence reports, smoke test
 * results): one entry per unique key, the newest replacing the older, at most `perGroup` per
 * group and `all` in all, the oldest going first. Every save is one synced batch in the
 * store's write queue, with its counters, so a restart finds indexes and counts that agree.
 */
export class BoundedTable<E extends SeqEntry> {
  private seq = 0
  private count = 0
  private readonly prefixIndexes: ReadonlyArray<PrefixIndex<E>>

  constructor (private readonly ctx: StoreContext, readonly spec: BoundedTableSpec<E>) {
    this.prefixIndexes = [spec.byGroup, ...spec.indexes ?? []]
  }

  async open (): Promise<void> {
    this.seq = await this.ctx.readCounter(this.spec.meta, this.spec.counters.seq)
    this.count = await this.ctx.readCounter(this.spec.meta, this.spec.counters.count)
  }

  /** Changes whenever an entry is saved. */
  version (): string {
    return String(this.seq)
  }

  async entry (id: string): Promise<E | undefined> {
    const e = this.ctx.parse<E>(this.spec.name, id, await this.spec.entries.get(id))
    if (e == null) return undefined
    if (typeof e !== 'object' || typeof e.seq !== 'number' || !this.spec.isEntry(e)) return this.ctx.damaged(this.spec.name, id)
    return e
  }

  async has (id: string): Promise<boolean> {
    return await this.spec.entries.has(id)
  }

  /** The id stored under a unique key. */
  async idOf (unique: string): Promise<string | undefined> {
    return await this.spec.byUnique.level.get(unique) ?? undefined
  }

  /** Ids of one group's entries, oldest first. */
  async groupIds (group: string): Promise<string[]> {
    return await this.spec.byGroup.level.values(prefixRange(group + SEP)).all()
  }

  /** The writes that file `entry` under `id` in every index. */
  puts (id: string, entry: E): Op[] {
    const seq = cursorKey(entry.seq)
    return [
      { type: 'put', sublevel: this.spec.entries, key: id, value: JSON.stringify(entry) },
      { type: 'put', sublevel: this.spec.bySeq, key: seq, value: id },
      { type: 'put', sublevel: this.spec.byUnique.level, key: this.spec.byUnique.key(entry), value: id },
      ...this.prefixIndexes.map((ix): Op => ({ type: 'put', sublevel: ix.level, key: ix.prefix(entry) + SEP + seq, value: id }))
    ]
  }

  /** The writes of the counters after a migration filed `count` entries numbered 1 to `count`. */
  countersAfter (count: number): Op[] {
    return [
      { type: 'put', sublevel: this.spec.meta, key: this.spec.counters.seq, value: String(count) },
      { type: 'put', sublevel: this.spec.meta, key: this.spec.counters.count, value: String(count) }
    ]
  }

  private async deletes (id: string): Promise<Op[]> {
    const e = await this.entry(id)
    const ops: Op[] = [{ type: 'del', sublevel: this.spec.entries, key: id }]
    if (e == null) return ops
    const seq = cursorKey(e.seq)
    return [...ops,
      { type: 'del', sublevel: this.spec.bySeq, key: seq },
      { type: 'del', sublevel: this.spec.byUnique.level, key: this.spec.byUnique.key(e) },
      ...this.prefixIndexes.map((ix): Op => ({ type: 'del', sublevel: ix.level, key: ix.prefix(e) + SEP + seq }))]
  }

  /**
   * Stores the entry `make` returns for the next place in save order under `id`, in place of
   * the one of its unique key; beyond the limits for its group, or in all, the oldest go.
   */
  async save (id: string, make: (seq: number) => E): Promise<E> {
    return await this.ctx.write(async () => {
      const { perGroup, all } = this.spec.limits()
      const entry = make(this.seq + 1)
      const gone = new Set<string>()
      const replaced = await this.idOf(this.spec.byUnique.key(entry))
      if (replaced != null) gone.add(replaced)
      // The same envelope stored for another reason is moved to the newest place.
      if (await this.has(id)) gone.add(id)
      const sameGroup = (await this.groupIds(this.spec.byGroup.prefix(entry))).filter(g => !gone.has(g))
      for (const g of sameGroup.slice(0, Math.max(0, sameGroup.length + 1 - perGroup))) gone.add(g)
      const removed = (await Promise.all([...gone].map(async g => await this.has(g)))).filter(Boolean).length
      let count = this.count - removed + 1
      if (count > all) {
        for await (const old of this.spec.bySeq.values({ limit: count - all + gone.size })) {
          if (count <= all) break
          if (gone.has(old)) continue
          gone.add(old)
          count--
        }
      }
      const ops: Op[] = []
      for (const g of gone) ops.push(...await this.deletes(g))
      ops.push(...this.puts(id, entry),
        { type: 'put', sublevel: this.spec.meta, key: this.spec.counters.seq, value: String(entry.seq) },
        { type: 'put', sublevel: this.spec.meta, key: this.spec.counters.count, value: String(count) })
      await this.ctx.db.batch(ops, { sync: true })
      this.seq = entry.seq
      this.count = count
      return entry
    })
  }

  /** Removes entries by id (those not stored are skipped), with their index entries, in one synced batch. */
  async remove (ids: readonly string[]): Promise<void> {
    await this.ctx.write(async () => {
      const ops: Op[] = []
      let removed = 0
      for (const id of new Set(ids)) {
        if (!await this.has(id)) continue
        removed++
        ops.push(...await this.deletes(id))
      }
      if (removed === 0) return
      const count = Math.max(0, this.count - removed)
      await this.ctx.db.batch([...ops, { type: 'put', sublevel: this.spec.meta, key: this.spec.counters.count, value: String(count) }], { sync: true })
      this.count = count
    })
  }

  /**
   * Entries newest first that `accept` takes, at most `max`: those filed under `from`'s
   * prefix, else all in save order.
   */
  async list (from: { index: PrefixIndex<E>, prefix: string } | undefined, accept: (e: E) => boolean, max: number): Promise<Array<{ id: string, entry: E }>> {
    const out: Array<{ id: string, entry: E }> = []
    if (max <= 0) return out
    const ids = from != null
      ? from.index.level.values({ ...prefixRange(from.prefix + SEP), reverse: true, limit: this.spec.limits().all })
      : this.spec.bySeq.values({ reverse: true, limit: this.spec.limits().all })
    for await (const id of ids) {
      const entry = await this.entry(id)
      if (entry == null || !accept(entry)) continue
      out.push({ id, entry })
      if (out.length >= max) break
    }
    return out
  }
}
