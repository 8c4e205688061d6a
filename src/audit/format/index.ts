import type { AuditReport } from '../types.js'
import { formatJson } from './json.js'
import { formatMarkdown } from './markdown.js'
import { formatSarif } from './sarif.js'
import { formatTable } from './table.js'

export const FORMATS = ['table', 'markdown', 'json', 'sarif'] as const
export type Format = typeof FORMATS[number]

export function formatReport (report: AuditReport, format: Format, init: { color?: boolean } = {}): string {
  switch (format) {
    case 'markdown': return formatMarkdown(report)
    case 'json': return formatJson(report)
    case 'sarif': return formatSarif(report)
    default: return formatTable(report, init)
  }
}
