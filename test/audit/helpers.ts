import { fileURLToPath } from 'node:url'
import type { AuditReport, Finding } from '../../src/audit/index.js'

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

/** `path:line` of each finding of one rule, by path then line, for readable assertions. */
export function placesOf (report: AuditReport, ruleId: string): string[] {
  return report.findings.filter(f => f.ruleId === ruleId)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.line - b.line))
    .map(f => `${f.path}:${f.line}`)
}

export function find (report: AuditReport, ruleId: string, path: string, line: number): Finding | undefined {
  return report.findings.find(f => f.ruleId === ruleId && f.path === path && f.line === line)
}
