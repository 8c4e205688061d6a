import type { DivergenceReport } from '../../protocol/divergence-report.js'
import { SEP, type StoreContext, type Sublevel } from './context.js'
import type { MessageLevels } from './messages.js'
import { reportIdOf, reportPuts, type ReportLevels } from './reports.js'
import type { StoredMessage } from './types.js'

/**
 * Brings a store written by an earlier version to the current layout, once, on open: each
 * step checks a flag in `meta` and sets it in the batch that finishes it.
 */
export async function migrate (ctx: StoreContext, messages: MessageLevels, reports: ReportLevels, state: Sublevel): Promise<void> {
  await indexClaimsByKey(ctx, messages)
  await reportsOutOfState(ctx, reports, state)
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
  const ops: Array<{ type: 'put', sublevel: Sublevel, key: string, value: string } | { type: 'del', sublevel: Sublevel, key: string }> = []
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

/** The state-space layout of divergence reports before they had sublevels of their own. */
const OLD_INDEX = 'divergences'
const oldEntryKey = (id: string): string => `divergence/${id}`

/**
 * Stores written when divergence reports lived in the state space (an index array under
 * `divergences`, oldest first, and each report under `divergence/<id>`) get them moved into the
 * report sublevels in the same order, in one batch that also removes the old keys.
 */
async function reportsOutOfState (ctx: StoreContext, l: ReportLevels, state: Sublevel): Promise<void> {
  const indexText = await state.get(OLD_INDEX)
  if (indexText == null) return
  const index = ctx.parse<Array<{ id?: unknown }>>('sta', OLD_INDEX, indexText)
  type Op = { type: 'put', sublevel: Sublevel, key: string, value: string } | { type: 'del', sublevel: Sublevel, key: string }
  const ops: Op[] = [{ type: 'del', sublevel: state, key: OLD_INDEX }]
  let seq = 0
  const seen = new Set<string>()
  for (const e of Array.isArray(index) ? index : []) {
    if (typeof e?.id !== 'string' || seen.has(e.id)) continue
    seen.add(e.id)
    ops.push({ type: 'del', sublevel: state, key: oldEntryKey(e.id) })
    const v = ctx.parse<{ keyId?: unknown, envelopeJson?: unknown, report?: DivergenceReport } | null>('sta', oldEntryKey(e.id), await state.get(oldEntryKey(e.id)))
    if (v == null || typeof v.keyId !== 'string' || typeof v.envelopeJson !== 'string' || typeof v.report?.target !== 'object' || v.report.a == null || v.report.b == null) continue
    // The id is the envelope's hash, as before; recomputed so a damaged index cannot misfile one.
    ops.push(...reportPuts(l, reportIdOf(v.envelopeJson), { keyId: v.keyId, envelopeJson: v.envelopeJson, report: v.report, seq: ++seq }))
  }
  ops.push({ type: 'put', sublevel: l.meta, key: 'reports:seq', value: String(seq) }, { type: 'put', sublevel: l.meta, key: 'reports:count', value: String(seq) })
  await ctx.db.batch(ops, { sync: true })
  ctx.log.info({ reports: seq }, 'moved divergence reports out of the state space into their own sublevels')
}
