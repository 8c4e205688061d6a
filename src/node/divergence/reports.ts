import type { DivergenceReport } from '../../protocol/divergence-report.js'
import { STORE_LIMITS } from '../store/limits.js'
import type { ReportFilter, ReportStanding, Store, StoredReport } from '../store/types.js'

/**
 * Divergence reports this node signed or received, kept by the store's report sub-store
 * (src/node/store/reports.ts); these are the names the divergence service, gossip and the HTTP service use.
 */

export type { ReportFilter, StoredReport } from '../store/types.js'
export { reportIdOf } from '../store/reports.js'

/** Reports kept per target (one per pair of claims); beyond it the oldest of the target goes. */
export const MAX_REPORTS_PER_TARGET = STORE_LIMITS.maxReportsPerTarget

export async function hasReport (store: Store, claimA: string, claimB: string): Promise<boolean> {
  return await store.reports.has(claimA, claimB)
}

/** What the store holds that a new report would meet: itself, the report of its pair, its target's count. */
export async function reportStanding (store: Store, id: string, report: DivergenceReport): Promise<ReportStanding> {
  return await store.reports.standing(id, report)
}

/**
 * Stores a report in place of any earlier one of the same pair of claims; beyond
 * MAX_REPORTS_PER_TARGET for its target, or STORE_LIMITS.maxReports in all, the oldest go.
 */
export async function saveReport (store: Store, envelopeJson: string, report: DivergenceReport, keyId: string): Promise<StoredReport> {
  return await store.reports.save(envelopeJson, report, keyId)
}

/** Reports matching `filter`, newest first. */
export async function listReports (store: Store, filter: ReportFilter = {}, limit: number = STORE_LIMITS.maxReports): Promise<StoredReport[]> {
  return await store.reports.list(filter, limit)
}

/** Changes whenever a report is saved: part of the HTTP cache key of what shows reports. Kept in the store, read without I/O. */
export function reportsVersion (store: Store): string {
  return store.reports.version()
}
