import { RULES } from '../registry.js'
import { SEVERITIES } from '../types.js'
import { skippedLine } from './skipped.js'
import { configErrors, fileErrors, summaryCounts } from './summary.js'
import type { AuditReport, Finding, RuleMeta, Severity } from '../types.js'

const TITLE: Record<Severity, string> = { critical: 'Critical', high: 'High', medium: 'Medium', low: 'Low' }

/** Inline code that survives backticks and pipes inside table cells. */
function code (text: string): string {
  const fence = text.includes('`') ? '``' : '`'
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${text.replace(/\|/g, '\\|')}${pad}${fence}`
}

function cell (text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function location (f: Finding): string {
  return `\`${f.path}:${f.line}\``
}

/** Groups findings by rule, in the order the rules appear at each severity. */
function byRule (findings: Finding[]): Array<[RuleMeta, Finding[]]> {
  const out: Array<[RuleMeta, Finding[]]> = []
  for (const rule of RULES) {
    const group = findings.filter(f => f.ruleId === rule.id)
    if (group.length > 0) out.push([rule, group])
  }
  return out
}

/** A report in the spirit of a reproducibility analysis: summary by severity, findings with their place and text, why, fixes, and a fix priority. */
export function formatMarkdown (report: AuditReport): string {
  const out: string[] = []
  const s = report.summary
  const blocking = s.critical + s.high
  out.push('# Reproducibility audit', '')
  out.push(`**Repository:** \`${report.root}\`  `)
  out.push(`**Files audited:** ${report.files.length}  `)
  out.push(`**Status:** ${blocking > 0 ? '❌ **NOT REPRODUCIBLE** as written' : report.findings.length > 0 ? '⚠️ minor causes of difference found' : '✅ no causes of non-reproducibility found'}`, '')
  out.push('## Summary', '', '| Severity | Findings | Rules |', '|---|---:|---|')
  for (const severity of SEVERITIES) {
    const rules = [...new Set(report.findings.filter(f => f.severity === severity).map(f => f.ruleId))]
    out.push(`| **${TITLE[severity]}** | ${s[severity]} | ${rules.map(r => `\`${r}\``).join(', ')} |`)
  }
  out.push('', `**Counted:** ${summaryCounts(report)}.`, '')
  if (report.skipped.length > 0) out.push(`${skippedLine(report.skipped.length)}.`, '')

  out.push('## Findings', '')
  if (report.findings.length === 0) out.push('No findings.', '')
  for (const severity of SEVERITIES) {
    const group = report.findings.filter(f => f.severity === severity)
    if (group.length === 0) continue
    out.push(`### ${TITLE[severity]}`, '')
    for (const [rule, findings] of byRule(group)) {
      out.push(`#### ${rule.title} (\`${rule.id}\`)`, '')
      out.push('| Location | Offending text | Detail |', '|---|---|---|')
      for (const f of findings) out.push(`| ${location(f)}${f.via != null ? ` (via \`${f.via}\`)` : ''} | ${code(f.text)} | ${cell(f.outside != null ? `${f.message} (no release build affected: ${f.outside})` : f.message)} |`)
      out.push('', `**Why it breaks reproducibility:** ${rule.why}`, '', `**Fix:** ${rule.fix}`, '')
    }
  }

  out.push('## Fix priority', '')
  const phases: Array<[string, Severity[]]> = [['Phase 1: critical, fix first', ['critical']], ['Phase 2: high', ['high']], ['Phase 3: medium and low', ['medium', 'low']]]
  for (const [title, severities] of phases) {
    const rules = byRule(report.findings.filter(f => severities.includes(f.severity)))
    if (rules.length === 0) continue
    out.push(`### ${title}`, '')
    let n = 1
    for (const [rule, findings] of rules) {
      const places = findings.slice(0, 5).map(location).join(', ') + (findings.length > 5 ? ` and ${findings.length - 5} more` : '')
      out.push(`${n++}. **${rule.title}** (${findings.length}): ${places}. ${rule.fix}`)
    }
    out.push('')
  }
  if (report.findings.length === 0) out.push('Nothing to fix.', '')

  const failed = fileErrors(report)
  if (failed.length > 0) {
    out.push('## Errors', '', 'These files could not be audited:', '')
    for (const e of failed) out.push(`- \`${e.path}\`: ${e.message}`)
    out.push('')
  }
  const config = configErrors(report)
  if (config.length > 0) {
    out.push('## Configuration errors', '', 'The audit was configured wrongly here (suppressions, ignore comments, --include/--exclude, recipe):', '')
    for (const e of config) out.push(`- \`${e.path}\`: ${e.message}`)
    out.push('')
  }
  out.push('## Files audited', '', '| File | Kind |', '|---|---|')
  for (const f of report.files) out.push(`| \`${f.path}\` | ${f.kind} |`)
  out.push('')
  return out.join('\n')
}
