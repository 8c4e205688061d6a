import { createHash } from 'node:crypto'
import { targetKey } from '../../protocol/target.js'
import type { DivergenceReport } from '../../protocol/divergence-report.js'
import { checkKey, cursorKey, prefixRange, SEP, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'
import type { ReportFilter, ReportStanding, ReportStore, StoredReport } from './types.js'

/** A report's id: hex sha256 of its envelope JSON as stored and gossiped. */
export function reportIdOf (envelopeJson: string | Uint8Array): string {
  return createHash('sha256').update(envelopeJson).digest('hex')
}

/** What `rpt` holds per report: the report and its place in save order. */
interface ReportEntry extends Omit<StoredReport, 'id'> {
  seq: number
}

type Op = { type: 'put', sublevel: Sublevel, key: string, value: string } | { type: 'del', sublevel: Sublevel, key: string }

function pairKey (claimA: string, claimB: string): string {
  return claimA + SEP + claimB
}

/** The sublevels of divergence reports. */
export interface ReportLevels {
  reports: Sublevel // id → ReportEntry JSON
  bySeq: Sublevel // seq → id (save order, newest last)
  byTarget: Sublevel // targetKey NUL seq → id
  byPair: Sublevel // claimA NUL claimB → id (one report per pair of claims)
  meta: Sublevel // `reports:seq` (the version counter), `reports:count`
}

export function reportLevels (ctx: StoreContext, meta: Sublevel): ReportLevels {
  return { reports: ctx.sublevel('rpt'), bySeq: ctx.sublevel('rsq'), byTarget: ctx.sublevel('rtg'), byPair: ctx.sublevel('rpr'), meta }
}

/** The writes that store one report under `seq`. */
export function reportPuts (l: ReportLevels, id: string, entry: ReportEntry): Op[] {
  const seq = cursorKey(entry.seq)
  const r = entry.report
  return [
    { type: 'put', sublevel: l.reports, key: id, value: JSON.stringify(entry) },
    { type: 'put', sublevel: l.bySeq, key: seq, value: id },
    { type: 'put', sublevel: l.byTarget, key: targetKey(r.target) + SEP + seq, value: id },
    { type: 'put', sublevel: l.byPair, key: pairKey(r.a.claimId, r.b.claimId), value: id }
  ]
}

/**
 * Divergence reports this node signed or received. They do not enter the message log (they are
 * derived, not claims): each is kept once per pair of claims, indexed by target and save order,
 * at most `maxReportsPerTarget` per target and `maxReports` in all, the oldest going first.
 */
export class ReportTable implements ReportStore {
  private seq = 0
  private count = 0

  constructor (private readonly ctx: StoreContext, private readonly l: ReportLevels) {}

  async open (): Promise<void> {
    this.seq = await this.ctx.readCounter(this.l.meta, 'reports:seq')
    this.count = await this.ctx.readCounter(this.l.meta, 'reports:count')
  }

  version (): string {
    return String(this.seq)
  }

  private async entry (id: string): Promise<ReportEntry | undefined> {
    const e = this.ctx.parse<ReportEntry>('rpt', id, await this.l.reports.get(id))
    if (e == null) return undefined
    if (typeof e !== 'object' || typeof e.seq !== 'number' || typeof e.envelopeJson !== 'string' || typeof e.report?.target !== 'object') return this.ctx.damaged('rpt', id)
    return e
  }

  async has (claimA: string, claimB: string): Promise<boolean> {
    this.ctx.assertOpen()
    return (await this.l.byPair.get(pairKey(claimA, claimB))) != null
  }

  async standing (id: string, report: DivergenceReport): Promise<ReportStanding> {
    this.ctx.assertOpen()
    const pairId = await this.l.byPair.get(pairKey(report.a.claimId, report.b.claimId))
    const pair = pairId != null ? await this.entry(pairId) : undefined
    return {
      stored: await this.l.reports.has(id),
      ...(pair != null ? { pairCreatedAt: pair.report.createdAt } : {}),
      forTarget: (await this.targetIds(targetKey(report.target))).length
    }
  }

  /** Ids of one target's reports, oldest first. */
  private async targetIds (key: string): Promise<Array<{ id: string, seqKey: string }>> {
    const out: Array<{ id: string, seqKey: string }> = []
    for await (const [k, id] of this.l.byTarget.iterator(prefixRange(key + SEP))) out.push({ id, seqKey: k.slice(key.length + 1) })
    return out
  }

  /** The deletes of one stored report's entries. */
  private async deletes (id: string): Promise<Op[]> {
    const e = await this.entry(id)
    const ops: Op[] = [{ type: 'del', sublevel: this.l.reports, key: id }]
    if (e == null) return ops
    const seq = cursorKey(e.seq)
    return [...ops,
      { type: 'del', sublevel: this.l.bySeq, key: seq },
      { type: 'del', sublevel: this.l.byTarget, key: targetKey(e.report.target) + SEP + seq },
      { type: 'del', sublevel: this.l.byPair, key: pairKey(e.report.a.claimId, e.report.b.claimId) }]
  }

  /**
   * Stores a report in place of any earlier one of the same pair of claims; beyond
   * `maxReportsPerTarget` for its target, or `maxReports` in all, the oldest go. One synced
   * batch, in the store's write queue, whoever saves (this node's divergence service, gossip from peers).
   */
  async save (envelopeJson: string, report: DivergenceReport, keyId: string): Promise<StoredReport> {
    this.ctx.assertOpen()
    checkKey('report keyId', keyId)
    const id = reportIdOf(envelopeJson)
    return await this.ctx.write(async () => {
      const gone = new Set<string>()
      const replaced = await this.l.byPair.get(pairKey(report.a.claimId, report.b.claimId))
      if (replaced != null) gone.add(replaced)
      // The same envelope stored for another reason is moved to the newest place.
      if (await this.l.reports.has(id)) gone.add(id)
      const key = targetKey(report.target)
      const sameTarget = (await this.targetIds(key)).filter(e => !gone.has(e.id))
      for (const e of sameTarget.slice(0, Math.max(0, sameTarget.length + 1 - STORE_LIMITS.maxReportsPerTarget))) gone.add(e.id)
      const removed = (await Promise.all([...gone].map(async g => await this.l.reports.has(g)))).filter(Boolean).length
      let count = this.count - removed + 1
      if (count > STORE_LIMITS.maxReports) {
        for await (const old of this.l.bySeq.values({ limit: count - STORE_LIMITS.maxReports + gone.size })) {
          if (count <= STORE_LIMITS.maxReports) break
          if (gone.has(old)) continue
          gone.add(old)
          count--
        }
      }
      const ops: Op[] = []
      for (const g of gone) ops.push(...await this.deletes(g))
      const seq = this.seq + 1
      ops.push(...reportPuts(this.l, id, { keyId, envelopeJson, report, seq }),
        { type: 'put', sublevel: this.l.meta, key: 'reports:seq', value: String(seq) },
        { type: 'put', sublevel: this.l.meta, key: 'reports:count', value: String(count) })
      await this.ctx.db.batch(ops, { sync: true })
      this.seq = seq
      this.count = count
      return { id, keyId, envelopeJson, report }
    })
  }

  /** Reports matching `filter`, newest first. */
  async list (filter: ReportFilter = {}, limit: number = STORE_LIMITS.maxReports): Promise<StoredReport[]> {
    this.ctx.assertOpen()
    const max = Math.max(0, Math.min(limit, STORE_LIMITS.maxReports))
    if (max === 0) return []
    // One target's reports come from its own range; others from save order, newest first.
    const ids = filter.key !== undefined
      ? (await this.targetIds(filter.key)).map(e => e.id).reverse()
      : await this.l.bySeq.values({ reverse: true, limit: STORE_LIMITS.maxReports }).all()
    const out: StoredReport[] = []
    for (const id of ids) {
      if (out.length >= max) break
      const e = await this.entry(id)
      if (e == null) continue
      const t = e.report.target
      if (filter.repository !== undefined && t.repository !== filter.repository) continue
      if (filter.tag !== undefined && t.tag !== filter.tag) continue
      out.push({ id, keyId: e.keyId, envelopeJson: e.envelopeJson, report: e.report })
    }
    return out
  }
}
