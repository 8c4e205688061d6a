import { toolInfo } from '../../tool.js'
import type { AuditReport } from '../types.js'

/** Version of the JSON report's shape (src/audit/schema/report.schema.json); raised on any incompatible change. */
export const REPORT_SCHEMA_VERSION = 1
const REPORT_SCHEMA_ID = 'https://neko-rebuilder.github.io/schemas/audit-report/v1.json'

export interface JsonReport extends AuditReport {
  $schema: string
  schemaVersion: number
  tool: { name: string, version: string }
}

export function toJsonReport (report: AuditReport): JsonReport {
  return { $schema: REPORT_SCHEMA_ID, schemaVersion: REPORT_SCHEMA_VERSION, tool: toolInfo(), ...report }
}

export function formatJson (report: AuditReport): string {
  return `${JSON.stringify(toJsonReport(report), null, 2)}\n`
}
