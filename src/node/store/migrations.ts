import type { DivergenceReport } from '../../protocol/divergence-report.js'
import type { TestResult } from '../../protocol/test-result.js'
import { statementIdOf, type BoundedTable, type Op, type SeqEntry } from './bounded-table.js'
import { SEP, type StoreContext, type Sublevel } from './context.js'
import type { MessageLevels } from './messages.js'
import type { ReportEntry } from './reports.js'
import { waitingIdOf, type TestResultEntry, type WaitingEntry } from './test-results.js'
import type { StoredMessage } from './types.js'

/**
 * Brings a store written by an earlier version to the current layout, once, on open: each
 * step checks a flag in `meta` and sets it in the batch that finishes it.
 */
export async function migrate (ctx: StoreContext, messages: MessageLevels, tables: { reports: BoundedTable<ReportEntry>, testResults: BoundedTable<TestResultEntry>, waiting: BoundedTable<WaitingEntry> }, state: Sublevel): Promise<void> {
  await indexClaimsByKey(ctx, messages)
  await outOfState(ctx, tables.reports, OLD_REPORTS, state)
  await outOfState(ctx, tables.testResults, OLD_TEST_RESULTS, state)
  await waitingOutOfState(ctx, tables.waiting, state)
  await renameStateKeys(ctx, state)
}

/**
 * State keys whose owner was renamed: what explains divergent builds was once called triage,
 * and its follower cursor and pending comparisons were kept under that name.
 */
const RENAMED_STATE_KEYS: ReadonlyArray<[string, string]> = [
  ['follower-cursor:triage', 'follower-cursor:divergence'],
  ['triage-pending', 'divergence-pending']
]

async function renameStateKeys (ctx: StoreContext, state: Sublevel): Promise<void> {
  const ops: Op[] = []
  for (const [from, to] of RENAMED_STATE_KEYS) {
    const value = await state.get(from)
    if (value == null) continue
    if (await state.get(to) == null) ops.push({ type: 'put', sublevel: state, key: to, value })
    ops.push({ type: 'del', sublevel: state, key: from })
  }
  if (ops.length > 0) await ctx.db.batch(ops, { sync: true })
}

/**
 * Stores written before the commit-and-key index existed get it from the claims they hold:
 * without it their trusted claims could be read only among everyone's.
 */
async function indexClaimsByKey (ctx: StoreContext, l: MessageLevels): Promise<void> {
  if (await l.meta.get('index:commit-key') === '1') return
  let ops: Array<{ type: 'put', sublevel: Sublevel, key: string, value: string }> = []
  for await (const [key, id] of l.byCommit.iterator()) {
    const text = await l.messages.get(id)
    if (text == null) continue
    let m: StoredMessage
    try {
      m = JSON.parse(text) as StoredMessage
    } catch {
      continue
    }
    if (typeof m.keyId !== 'string') continue
    const last = key.lastIndexOf(SEP)
    ops.push({ type: 'put', sublevel: l.byCommitKey, key: key.slice(0, last + 1) + m.keyId + key.slice(last), value: id })
    if (ops.length >= 1000) {
      await ctx.db.batch(ops)
      ops = []
    }
  }
  await ctx.db.batch([...ops, { type: 'put', sublevel: l.meta, key: 'index:commit-key', value: '1' }], { sync: true })
}

/**
 * How signed statements kept beside the log were laid out in the state space before they had
 * sublevels of their own: an index array (oldest first, each entry with an `id`) under
 * `index`, and each statement under `entry(id)`.
 */
interface StateLayout<E extends SeqEntry & { envelopeJson: string }> {
  what: string
  index: string
  entry: (id: string) => string
  /** The entry filed for an old value, or undefined when it lacks what readers need. */
  toEntry: (v: Record<string, unknown>, seq: number) => E | undefined
}

const OLD_REPORTS: StateLayout<ReportEntry> = {
  what: 'divergence reports',
  index: 'divergences',
  entry: id => `divergence/${id}`,
  toEntry: (v, seq) => {
    const report = v.report as DivergenceReport | undefined
    if (typeof v.keyId !== 'string' || typeof v.envelopeJson !== 'string' || typeof report?.target !== 'object' || report.a == null || report.b == null) return undefined
    return { keyId: v.keyId, envelopeJson: v.envelopeJson, report, seq }
  }
}

const OLD_TEST_RESULTS: StateLayout<TestResultEntry> = {
  what: 'smoke test results',
  index: 'test-results',
  entry: id => `test-result/${id}`,
  toEntry: (v, seq) => {
    const testResult = v.testResult as TestResult | undefined
    if (typeof v.keyId !== 'string' || typeof v.envelopeJson !== 'string' || typeof testResult?.target !== 'object' || typeof testResult.manifestDigest !== 'string') return undefined
    return { keyId: v.keyId, envelopeJson: v.envelopeJson, testResult, seq }
  }
}

/**
 * Stores written when statements lived in the state space get them moved into their table's
 * sublevels in the same order, in one batch that also removes the old keys.
 */
async function outOfState<E extends SeqEntry & { envelopeJson: string }> (ctx: StoreContext, table: BoundedTable<E>, old: StateLayout<E>, state: Sublevel): Promise<void> {
  const indexText = await state.get(old.index)
  if (indexText == null) return
  const index = ctx.parse<Array<{ id?: unknown }>>('sta', old.index, indexText)
  const ops: Op[] = [{ type: 'del', sublevel: state, key: old.index }]
  let seq = 0
  const seen = new Set<string>()
  for (const e of Array.isArray(index) ? index : []) {
    if (typeof e?.id !== 'string' || seen.has(e.id)) continue
    seen.add(e.id)
    ops.push({ type: 'del', sublevel: state, key: old.entry(e.id) })
    const v = ctx.parse<Record<string, unknown> | null>('sta', old.entry(e.id), await state.get(old.entry(e.id)))
    const entry = v != null && typeof v === 'object' ? old.toEntry(v, seq + 1) : undefined
    if (entry == null) continue
    seq++
    // The id is the envelope's hash, as before; recomputed so a damaged index cannot misfile one.
    ops.push(...table.puts(statementIdOf(entry.envelopeJson), entry))
  }
  await ctx.db.batch([...ops, ...table.countersAfter(seq)], { sync: true })
  ctx.log.info({ moved: seq }, `moved ${old.what} out of the state space into their own sublevels`)
}

/** Where this node's own smoke test outcomes waited, oldest first, before they had sublevels of their own. */
const OLD_WAITING = 'test-results/pending'

async function waitingOutOfState (ctx: StoreContext, table: BoundedTable<WaitingEntry>, state: Sublevel): Promise<void> {
  const text = await state.get(OLD_WAITING)
  if (text == null) return
  const held = ctx.parse<unknown>('sta', OLD_WAITING, text)
  const ops: Op[] = [{ type: 'del', sublevel: state, key: OLD_WAITING }]
  const ids = new Set<string>()
  for (const t of Array.isArray(held) ? held as TestResult[] : []) {
    if (typeof t?.target !== 'object' || typeof t.manifestDigest !== 'string') continue
    const id = waitingIdOf(t)
    if (ids.has(id)) continue
    ids.add(id)
    ops.push(...table.puts(id, { testResult: t, seq: ids.size }))
  }
  await ctx.db.batch([...ops, ...table.countersAfter(ids.size)], { sync: true })
  ctx.log.info({ moved: ids.size }, 'moved waiting smoke test outcomes out of the state space into their own sublevels')
}
