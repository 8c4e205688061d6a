import { SEVERITIES } from '../types.js'
import type { AuditReport, Finding, Severity } from '../types.js'
import { skippedLine } from './skipped.js'
import { configErrors, fileErrors, plural, summaryCounts } from './summary.js'

export interface TableInit {
  /** ANSI colours for a terminal. */
  color?: boolean
}

const COLORS: Record<Severity, string> = { critical: '\x1b[1;31m', high: '\x1b[31m', medium: '\x1b[33m', low: '\x1b[36m' }
const RESET = '\x1b[0m'
const DIM = '\x1b[2m'
/** A low-severity rule with more findings than this is shown as one block, so it does not bury the rest. */
export const FOLD_AT = 10
/** Places a folded block shows. */
const FOLD_SHOWN = 3

function location (f: Finding): string {
  return `${f.path}:${f.line}${f.column != null ? `:${f.column}` : ''}`
}

/** A plain-text report for a terminal: findings grouped by severity, most severe first. */
export function formatTable (report: AuditReport, init: TableInit = {}): string {
  const paint = (code: string, s: string): string => init.color === true ? `${code}${s}${RESET}` : s
  const out: string[] = []
  for (const severity of SEVERITIES) {
    const group = report.findings.filter(f => f.severity === severity)
    if (group.length === 0) continue
    out.push(paint(COLORS[severity], `${severity.toUpperCase()} (${group.length})`))
    const counts = new Map<string, number>()
    for (const f of group) counts.set(f.ruleId, (counts.get(f.ruleId) ?? 0) + 1)
    const folded = severity === 'low' ? [...counts].filter(([, n]) => n > FOLD_AT).map(([id]) => id) : []
    const listed = group.filter(f => !folded.includes(f.ruleId))
    const width = Math.min(60, Math.max(0, ...listed.map(f => location(f).length)))
    const idWidth = Math.max(0, ...listed.map(f => f.ruleId.length))
    for (const f of listed) {
      out.push(`  ${location(f).padEnd(width)}  ${f.ruleId.padEnd(idWidth)}  ${f.message}`)
      out.push(paint(DIM, `  ${' '.repeat(width)}  ${' '.repeat(idWidth)}  > ${f.text}${f.via != null ? `  (via ${f.via})` : ''}`))
      if (f.outside != null) out.push(paint(DIM, `  ${' '.repeat(width)}  ${' '.repeat(idWidth)}  no release build affected: ${f.outside}`))
    }
    // Many findings of one low rule (NR050 at every COPY) come as one block after the rest.
    for (const id of folded) {
      const all = group.filter(f => f.ruleId === id)
      const files = new Set(all.map(f => f.path)).size
      out.push(`  ${id}  ${all.length} findings in ${plural(files, 'file')}: ${all[0]?.title ?? ''}`)
      out.push(paint(DIM, `    ${all.slice(0, FOLD_SHOWN).map(location).join(', ')} and ${all.length - FOLD_SHOWN} more (--format markdown lists them; --exclude ${id.slice(0, 5)} leaves them out)`))
    }
    out.push('')
  }
  const failed = fileErrors(report)
  if (failed.length > 0) {
    out.push(paint(COLORS.high, `ERRORS (${failed.length}): not audited`))
    for (const e of failed) out.push(`  ${e.path}: ${e.message}`)
    out.push('')
  }
  const config = configErrors(report)
  if (config.length > 0) {
    out.push(paint(COLORS.high, `CONFIG ERRORS (${config.length}): the audit's configuration (suppressions, --include/--exclude, recipe) is wrong here`))
    for (const e of config) out.push(`  ${e.path}: ${e.message}`)
    out.push('')
  }
  if (report.skipped.length > 0) out.push(skippedLine(report.skipped.length))
  out.push(`${plural(report.files.length, 'file')} audited: ${summaryCounts(report)}`)
  if (report.findings.length > 0) out.push('Run with --format markdown for why each finding matters and how to fix it.')
  return `${out.join('\n')}\n`
}
