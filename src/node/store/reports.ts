import { targetKey } from '../../protocol/target.js'
import type { DivergenceReport } from '../../protocol/divergence-report.js'
import { BoundedTable, statementIdOf } from './bounded-table.js'
import { checkKey, SEP, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'
import type { ReportFilter, ReportStanding, ReportStore, StoredReport } from './types.js'

/** A report's id: hex sha256 of its envelope JSON as stored and gossiped. */
export const reportIdOf = statementIdOf

/** What `rpt` holds per report: the report and its place in save order. */
export interface ReportEntry extends Omit<StoredReport, 'id'> {
  seq: number
}

function pairKey (claimA: string, claimB: string): string {
  return claimA + SEP + claimB
}

/**
 * The sublevels of divergence reports: `rpt` (id → entry), `rsq` (seq → id, save order),
 * `rtg` (targetKey NUL seq → id), `rpr` (claimA NUL claimB → id: one report per pair of
 * claims); in `meta`, `reports:seq` (the version counter) and `reports:count`.
 */
export function reportsTable (ctx: StoreContext, meta: Sublevel): BoundedTable<ReportEntry> {
  return new BoundedTable<ReportEntry>(ctx, {
    name: 'rpt',
    entries: ctx.sublevel('rpt'),
    bySeq: ctx.sublevel('rsq'),
    byGroup: { level: ctx.sublevel('rtg'), prefix: e => targetKey(e.report.target) },
    byUnique: { level: ctx.sublevel('rpr'), key: e => pairKey(e.report.a.claimId, e.report.b.claimId) },
    meta,
    counters: { seq: 'reports:seq', count: 'reports:count' },
    isEntry: e => typeof e.envelopeJson === 'string' && typeof e.report?.target === 'object' && e.report.a != null && e.report.b != null,
    limits: () => ({ perGroup: STORE_LIMITS.maxReportsPerTarget, all: STORE_LIMITS.maxReports })
  })
}

/**
 * Divergence reports this node signed or received. They do not enter the message log (they are
 * derived, not claims): each is kept once per pair of claims, indexed by target and save order,
 * at most `maxReportsPerTarget` per target and `maxReports` in all, the oldest going first.
 */
export class ReportTable implements ReportStore {
  readonly table: BoundedTable<ReportEntry>

  constructor (private readonly ctx: StoreContext, meta: Sublevel) {
    this.table = reportsTable(ctx, meta)
  }

  async open (): Promise<void> {
    await this.table.open()
  }

  version (): string {
    return this.table.version()
  }

  async has (claimA: string, claimB: string): Promise<boolean> {
    this.ctx.assertOpen()
    return await this.table.idOf(pairKey(claimA, claimB)) != null
  }

  async standing (id: string, report: DivergenceReport): Promise<ReportStanding> {
    this.ctx.assertOpen()
    const pairId = await this.table.idOf(pairKey(report.a.claimId, report.b.claimId))
    const pair = pairId != null ? await this.table.entry(pairId) : undefined
    return {
      stored: await this.table.has(id),
      ...(pair != null ? { pairCreatedAt: pair.report.createdAt } : {}),
      forTarget: (await this.table.groupIds(targetKey(report.target))).length
    }
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
    await this.table.save(id, seq => ({ keyId, envelopeJson, report, seq }))
    return { id, keyId, envelopeJson, report }
  }

  /** Reports matching `filter`, newest first. */
  async list (filter: ReportFilter = {}, limit: number = STORE_LIMITS.maxReports): Promise<StoredReport[]> {
    this.ctx.assertOpen()
    const max = Math.max(0, Math.min(limit, STORE_LIMITS.maxReports))
    // One target's reports come from its own range; others from save order, newest first.
    const from = filter.key !== undefined ? { index: this.table.spec.byGroup, prefix: filter.key } : undefined
    const found = await this.table.list(from, ({ report: { target: t } }) =>
      (filter.repository === undefined || t.repository === filter.repository) &&
      (filter.tag === undefined || t.tag === filter.tag), max)
    return found.map(({ id, entry: e }) => ({ id, keyId: e.keyId, envelopeJson: e.envelopeJson, report: e.report }))
  }
}
