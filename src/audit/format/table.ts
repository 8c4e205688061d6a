import { SEVERITIES } from '../types.js'
import type { AuditReport, Finding, Severity } from '../types.js'
import { skippedLine } from './skipped.js'

export interface TableInit {
  /** ANSI colours for a terminal. */
  color?: boolean
}

const COLORS: Record<Severity, string> = { critical: '\x1b[1;31m', high: '\x1b[31m', medium: '\x1b[33m', low: '\x1b[36m' }
const RESET = '\x1b[0m'
const DIM = '\x1b[2m'

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
    const width = Math.min(60, Math.max(...group.map(f => location(f).length)))
    const idWidth = Math.max(...group.map(f => f.ruleId.length))
    for (const f of group) {
      out.push(`  ${location(f).padEnd(width)}  ${f.ruleId.padEnd(idWidth)}  ${f.message}`)
      out.push(paint(DIM, `  ${' '.repeat(width)}  ${' '.repeat(idWidth)}  > ${f.text}${f.via != null ? `  (via ${f.via})` : ''}`))
      if (f.outside != null) out.push(paint(DIM, `  ${' '.repeat(width)}  ${' '.repeat(idWidth)}  no release build affected: ${f.outside}`))
    }
    out.push('')
  }
  if (report.errors.length > 0) {
    out.push(paint(COLORS.high, `ERRORS (${report.errors.length}): not audited`))
    for (const e of report.errors) out.push(`  ${e.path}: ${e.message}`)
    out.push('')
  }
  if (report.skipped.length > 0) out.push(skippedLine(report.skipped.length))
  const s = report.summary
  out.push(`${report.files.length} files audited: ${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low${report.errors.length > 0 ? `, ${report.errors.length} errors` : ''}`)
  if (report.findings.length > 0) out.push('Run with --format markdown for why each finding matters and how to fix it.')
  return `${out.join('\n')}\n`
}
