import { createHash } from 'node:crypto'
import type { DivergenceReport } from '../../protocol/triage.js'
import { targetKey } from '../../protocol/target.js'
import type { Store } from '../store/types.js'

/**
 * Divergence reports this node signed or received, in the store's state space: an index
 * under `divergences` (newest last, at most MAX_REPORTS) and each envelope under
 * `divergence/<id>`. Reports do not enter the message log: they are derived, not claims.
 */

export interface StoredReport {
  /** Hex sha256 of the envelope JSON. */
  id: string
  /** Key id that signed it. */
  keyId: string
  envelopeJson: string
  report: DivergenceReport
}

interface IndexEntry {
  id: string
  key: string
  repository: string
  tag?: string
  /** `claimIdA claimIdB`: one report per pair of claims. */
  pair: string
  createdAt: string
}

const INDEX = 'divergences'
const MAX_REPORTS = 500
/** Reports kept per target (one per pair of claims); beyond it the oldest of the target goes. */
export const MAX_REPORTS_PER_TARGET = 16

function pairOf (r: DivergenceReport): string {
  return `${r.a.claimId} ${r.b.claimId}`
}

async function index (store: Store): Promise<IndexEntry[]> {
  return (await store.getState<IndexEntry[]>(INDEX)) ?? []
}

export async function hasReport (store: Store, claimA: string, claimB: string): Promise<boolean> {
  return (await index(store)).some(e => e.pair === `${claimA} ${claimB}`)
}

/** A report's id: hex sha256 of its envelope JSON as stored and gossiped. */
export function reportIdOf (envelopeJson: string | Uint8Array): string {
  return createHash('sha256').update(envelopeJson).digest('hex')
}

/** What the store holds that a new report would meet: itself, the report of its pair, its target's count. */
export async function reportStanding (store: Store, id: string, report: DivergenceReport): Promise<{ stored: boolean, pairCreatedAt?: string, forTarget: number }> {
  const entries = await index(store)
  const key = targetKey(report.target)
  const pair = entries.find(e => e.pair === pairOf(report))
  return {
    stored: entries.some(e => e.id === id),
    ...(pair != null ? { pairCreatedAt: pair.createdAt } : {}),
    forTarget: entries.filter(e => e.key === key).length
  }
}

/**
 * Stores a report in place of any earlier one of the same pair of claims; beyond
 * MAX_REPORTS_PER_TARGET for its target, or MAX_REPORTS in all, the oldest go.
 */
export async function saveReport (store: Store, envelopeJson: string, report: DivergenceReport, keyId: string): Promise<StoredReport> {
  // The index is read, changed and written back: one save at a time per store, whoever saves
  // (this node's triage, gossip from peers).
  const before = saving.get(store) ?? Promise.resolve()
  const done = before.then(async () => await save(store, envelopeJson, report, keyId))
  saving.set(store, done.catch(() => {}))
  return await done
}

const saving = new WeakMap<Store, Promise<unknown>>()
const versions = new WeakMap<Store, number>()

async function save (store: Store, envelopeJson: string, report: DivergenceReport, keyId: string): Promise<StoredReport> {
  const id = reportIdOf(envelopeJson)
  const key = targetKey(report.target)
  const entries = (await index(store)).filter(e => e.pair !== pairOf(report))
  await store.setState(`divergence/${id}`, { keyId, envelopeJson, report })
  entries.push({ id, key, repository: report.target.repository, ...(report.target.tag != null ? { tag: report.target.tag } : {}), pair: pairOf(report), createdAt: report.createdAt })
  const sameTarget = entries.filter(e => e.key === key)
  const dropped = sameTarget.slice(0, Math.max(0, sameTarget.length - MAX_REPORTS_PER_TARGET))
  const kept = entries.filter(e => !dropped.includes(e))
  dropped.push(...kept.splice(0, Math.max(0, kept.length - MAX_REPORTS)))
  for (const d of dropped) await store.setState(`divergence/${d.id}`, null)
  await store.setState(INDEX, kept)
  versions.set(store, (versions.get(store) ?? 0) + 1)
  return { id, keyId, envelopeJson, report }
}

export interface ReportFilter {
  repository?: string
  tag?: string
  /** `targetKey` */
  key?: string
}

/** Reports matching `filter`, newest first. */
export async function listReports (store: Store, filter: ReportFilter = {}, limit = MAX_REPORTS): Promise<StoredReport[]> {
  const out: StoredReport[] = []
  const entries = (await index(store)).filter(e =>
    (filter.repository === undefined || e.repository === filter.repository) &&
    (filter.tag === undefined || e.tag === filter.tag) &&
    (filter.key === undefined || e.key === filter.key))
  for (const e of entries.reverse()) {
    if (out.length >= limit) break
    const v = await store.getState<Omit<StoredReport, 'id'> | null>(`divergence/${e.id}`)
    if (v != null) out.push({ id: e.id, ...v })
  }
  return out
}

/**
 * Changes whenever a report is saved: part of the HTTP cache key of what shows reports. Counted
 * in memory as saves happen (every save goes through `saveReport`), so a cached answer costs no
 * store read.
 */
export function reportsVersion (store: Store): string {
  return String(versions.get(store) ?? 0)
}
