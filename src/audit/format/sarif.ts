import { pathToFileURL } from 'node:url'
import { TOOL_NAME, TOOL_VERSION } from '../../tool.js'
import { RULES } from '../registry.js'
import type { AuditReport, Finding, Severity } from '../types.js'

/** SARIF has three result levels; critical and high both fail a code-scanning gate. */
const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = { critical: 'error', high: 'error', medium: 'warning', low: 'note' }
/** GitHub code scanning ranks by this score (0–10). */
const SECURITY_SEVERITY: Record<Severity, string> = { critical: '9.5', high: '7.5', medium: '5.0', low: '2.0' }

const SRCROOT = '%SRCROOT%'

/** A repository-relative path as a relative URI reference. */
function uri (path: string): string {
  return path.split('/').map(encodeURIComponent).join('/')
}

/** The report as a SARIF 2.1.0 log with one run. */
export function toSarif (report: AuditReport): Record<string, unknown> {
  const index = new Map(RULES.map((r, i) => [r.id, i]))
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: `${TOOL_NAME} audit`,
          version: TOOL_VERSION,
          rules: RULES.map(r => ({
            id: r.id,
            name: r.id.replace(/^NR\d+-/, '').replace(/-(\w)/g, (_m, c: string) => c.toUpperCase()),
            shortDescription: { text: r.title },
            fullDescription: { text: r.why },
            help: { text: `${r.why}\n\nFix: ${r.fix}`, markdown: `${r.why}\n\n**Fix:** ${r.fix}` },
            defaultConfiguration: { level: SARIF_LEVEL[r.severity] },
            properties: { tags: ['reproducibility', r.severity], 'security-severity': SECURITY_SEVERITY[r.severity] }
          }))
        }
      },
      originalUriBaseIds: { [SRCROOT]: { uri: pathToFileURL(report.root.endsWith('/') ? report.root : `${report.root}/`).href } },
      invocations: [{
        executionSuccessful: report.errors.length === 0,
        toolExecutionNotifications: report.errors.map(e => ({
          level: 'error',
          message: { text: e.kind === 'config' ? `configuration error: ${e.message}` : e.message },
          locations: [{ physicalLocation: { artifactLocation: { uri: uri(e.path), uriBaseId: SRCROOT } } }]
        }))
      }],
      results: [...report.findings, ...report.suppressed].map((f: Finding & { suppressed?: AuditReport['suppressed'][number]['suppressed'] }) => ({
        ruleId: f.ruleId,
        ruleIndex: index.get(f.ruleId) ?? 0,
        level: SARIF_LEVEL[f.severity],
        message: { text: `${f.message}.${f.via != null ? ` (audited through ${f.via})` : ''}` },
        locations: [{
          physicalLocation: {
            artifactLocation: { uri: uri(f.path), uriBaseId: SRCROOT },
            region: { startLine: f.line, ...(f.column != null ? { startColumn: f.column } : {}), snippet: { text: f.text } }
          }
        }],
        partialFingerprints: { 'nekoAudit/v1': `${f.ruleId}:${f.path}:${f.text}` },
        properties: { severity: f.severity },
        // Waived findings stay visible to code scanning as suppressed, with their reason.
        ...(f.suppressed != null ? { suppressions: [{ kind: f.suppressed.by === 'inline' ? 'inSource' : 'external', justification: f.suppressed.reason }] } : {})
      }))
    }]
  }
}

export function formatSarif (report: AuditReport): string {
  return `${JSON.stringify(toSarif(report), null, 2)}\n`
}
