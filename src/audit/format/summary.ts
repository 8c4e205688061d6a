import type { AuditFileError, AuditReport } from '../types.js'

/** Errors about audited files: those files were not (fully) audited. */
export function fileErrors (report: AuditReport): AuditFileError[] {
  return report.errors.filter(e => e.kind !== 'config')
}

/** Errors in how the audit was configured (suppression file, ignore comments, --include/--exclude, recipe). */
export function configErrors (report: AuditReport): AuditFileError[] {
  return report.errors.filter(e => e.kind === 'config')
}

/** `1 file`, `2 files`: counts read as written. */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/**
 * The counts every format and the command line print: findings by severity, then what was
 * waived, left out, or could not be audited, so that nothing leaves the report unmentioned.
 */
export function summaryCounts (report: AuditReport): string {
  const s = report.summary
  const parts = [`${s.critical} critical, ${s.high} high, ${s.medium} medium, ${s.low} low`]
  if (report.suppressed.length > 0) parts.push(`${report.suppressed.length} suppressed`)
  if ((report.excluded ?? 0) > 0) parts.push(`${report.excluded ?? 0} excluded`)
  const files = fileErrors(report).length
  const config = configErrors(report).length
  if (files > 0) parts.push(plural(files, 'error'))
  if (config > 0) parts.push(plural(config, 'config error'))
  return parts.join(', ')
}
