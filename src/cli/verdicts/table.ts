import { describeDivergence } from '../../protocol/divergence.js'
import type { Target } from '../../protocol/types.js'
import { worstStatus } from '../../node/consensus/outcome.js'
import type { ClaimSummary, TagConsensus, TargetConsensus } from '../../node/consensus/types.js'
import { failureLines, votesText } from './votes.js'

/**
 * The one plain-text form of verdicts, for terminals and CI logs (`status` and `verify`):
 * one row per target, details indented below.
 */

function shortKey (keyId: string): string {
  return keyId.slice(0, 12)
}

/** A key, short, with its operator where the policy names one. */
function who (c: { keyId: string, operator?: string }): string {
  return c.operator !== undefined ? `${shortKey(c.keyId)} (${c.operator})` : shortKey(c.keyId)
}

function shortDigest (d: string | undefined): string {
  return d === undefined ? '-' : d.slice(0, 19) + '…'
}

function pad (rows: string[][]): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length) })
  return rows.map(row => row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join('  ').trimEnd())
}

export interface FormatOptions {
  /** Whether the published digests were checked; PUBLISHED is `-` when not. */
  publishedChecked?: boolean
}

function publishedCell (t: TargetConsensus, checked: boolean): string {
  if (!checked) return '-'
  if (t.published.match === 'yes') return 'matches'
  if (t.published.match === 'no') return `MISMATCH ${shortDigest(t.published.digest)}`
  // Checked, but there is no consensus digest to compare it with.
  return t.published.digest !== undefined ? `not compared (${shortDigest(t.published.digest)})` : 'unknown'
}

/**
 * Whether the leading digest has more counted votes than any other: with a tie (three
 * builders, three digests) the "leading" one is only the smallest, and nobody agrees.
 */
function leads (t: TargetConsensus): boolean {
  if (t.dissenting.length === 0) return true
  const others = new Map<string, number>()
  for (const d of t.dissenting) others.set(d.digest ?? '', (others.get(d.digest ?? '') ?? 0) + 1)
  return t.agreeing.length > Math.max(...others.values())
}

/**
 * The `overall:` line: the worst status, and, where the gate fails on the registry check
 * alone, that it does, so `reproducible` never stands above an exit 1.
 */
export function overallLine (targets: readonly TargetConsensus[]): string {
  const status = worstStatus(targets.map(t => t.status))
  const mismatched = targets.filter(t => t.published.match === 'no').length
  if (mismatched === 0) return `overall: ${status}`
  const what = `${mismatched} target${mismatched === 1 ? '' : 's'} reproducible to another digest than the registry publishes`
  return status === 'reproducible' ? `overall: MISMATCH (${what})` : `overall: ${status}; MISMATCH (${what})`
}

/** The table of targets and their details, without the release around it. */
export function formatTargets (targets: readonly TargetConsensus[], opts: FormatOptions = {}): string[] {
  const checked = opts.publishedChecked ?? targets.some(t => t.published.digest !== undefined)
  const out: string[] = []
  const rows: string[][] = [['VARIANT', 'PLATFORM', 'VERDICT', 'VOTES', 'CONSENSUS DIGEST', 'PUBLISHED']]
  const details = new Map<number, string[]>()
  targets.forEach((t, i) => {
    const sameEngine = t.sameEngine.filter(x => x.digest === t.leadingDigest).length
    const split = !leads(t)
    rows.push([
      t.variant,
      t.platform,
      t.status,
      split
        ? votesText({ agreeing: 0, answered: t.trustedCount, outstanding: t.outstanding, threshold: t.threshold }).replace(/^0 agree/, `split ${new Set([...t.agreeing, ...t.dissenting].map(d => d.digest)).size} ways`)
        : votesText({ agreeing: t.agreeing.length, sameEngine, answered: t.trustedCount, outstanding: t.outstanding, threshold: t.threshold }),
      shortDigest(t.consensusDigest),
      publishedCell(t, checked)
    ])
    const lines: string[] = []
    if (t.reason !== undefined) lines.push(`${t.status}: ${t.reason}`)
    // No digest leads: nobody "agrees", each vote is listed for what it is.
    if (split) for (const d of t.agreeing) lines.push(`digest   ${who(d)}: ${d.digest ?? '-'}`)
    for (const d of t.dissenting) {
      lines.push(`${split ? 'digest ' : 'dissent'}  ${who(d)}: ${d.digest ?? '-'}`)
      if (d.divergence !== undefined) lines.push(`         first difference${split ? ` from ${who(t.agreeing[0] ?? d)}` : ''}: ${describeDivergence(d.divergence)}`)
    }
    const byClass = new Map<string, ClaimSummary[]>()
    for (const f of t.failed) {
      const k = f.failure?.class ?? 'failure'
      byClass.set(k, [...(byClass.get(k) ?? []), f])
    }
    for (const [cls, list] of byClass) {
      lines.push(`failed   ${cls} × ${list.length}: ${list.map(f => `${who(f)}${f.failure?.step !== undefined ? ` at ${f.failure.step}` : ''}`).join(', ')}`)
    }
    // What went wrong, in the builder's own log: the newest excerpt of each class is enough.
    for (const [cls, list] of byClass) {
      const f = list.find(x => x.failure?.logExcerpt !== undefined)
      if (f?.failure?.logExcerpt === undefined) continue
      lines.push(`log      ${who(f)} (${cls}), what failed:`)
      for (const l of failureLines(f.failure.logExcerpt)) lines.push(`         | ${l}`)
    }
    for (const x of t.sameEngine) lines.push(`same engine (counted once) ${who(x)} with ${shortKey(x.countedAs)}: engine ${x.engineId}`)
    if (t.untrusted.length > 0) {
      lines.push(`untrusted ${t.untrusted.length} claim${t.untrusted.length === 1 ? '' : 's'}: ${t.untrusted.map(u => `${shortKey(u.keyId)} ${u.digest !== undefined ? shortDigest(u.digest) : (u.failure?.class ?? '')}`).join(', ')}`)
    }
    for (const e of t.equivocating) lines.push(`equivocating (not counted) ${who(e)}: ${e.digests.map(shortDigest).join(' and ')}`)
    for (const x of t.setAside) lines.push(`set aside (not counted) ${who(x)}: ${x.reason}`)
    if (t.published.match === 'no' && t.published.digest !== undefined) lines.push(`published ${t.published.digest}`)
    if (lines.length > 0) details.set(i + 1, lines)
  })
  const table = pad(rows)
  table.forEach((line, i) => {
    out.push(line)
    for (const d of details.get(i) ?? []) out.push(`    ${d}`)
  })
  return out
}

/** One announced release (`status`): what it is, who announced it, its targets. */
export function formatConsensus (c: TagConsensus, opts: FormatOptions = {}): string {
  const out: string[] = []
  out.push(`${c.repository} ${c.tag}`)
  out.push(`commit ${c.commit} · recipe ${c.recipe.name} · announced by ${shortKey(c.announcement.keyId)}${c.announcement.trusted ? '' : ' (not a trusted announcer)'} at ${c.announcement.announcedAt}`)
  for (const o of c.otherAnnouncements) {
    out.push(`also announced by ${shortKey(o.keyId)}${o.trusted ? '' : ' (untrusted)'} at commit ${o.commit.slice(0, 12)} (${o.announcedAt})`)
  }
  out.push('')
  out.push(...formatTargets(c.targets, opts))
  out.push('')
  out.push(overallLine(c.targets))
  return out.join('\n') + '\n'
}

/**
 * Verdicts of a bundle (`verify`), which may hold several releases or bare commits: the same
 * table per release, under its repository and tag (or commit).
 */
export function formatReleases (targets: ReadonlyArray<{ target: Target, consensus: TargetConsensus }>, opts: FormatOptions = {}): string {
  const groups = new Map<string, { target: Target, list: TargetConsensus[] }>()
  for (const { target, consensus } of targets) {
    const k = `${target.repository} ${target.commit} ${target.tag ?? ''}`
    const g = groups.get(k)
    if (g === undefined) groups.set(k, { target, list: [consensus] })
    else g.list.push(consensus)
  }
  const out: string[] = []
  for (const { target, list } of groups.values()) {
    out.push(target.tag !== undefined ? `${target.repository} ${target.tag}` : target.repository, `commit ${target.commit}`, '')
    out.push(...formatTargets(list, opts), '')
  }
  out.push(overallLine(targets.map(t => t.consensus)))
  return out.join('\n') + '\n'
}
