import { SEVERITIES } from './types.js'
import type { AuditReport, Severity } from './types.js'

export type FailOn = Severity | 'none'
export const FAIL_ON: readonly FailOn[] = [...SEVERITIES, 'none']

/**
 * The exit code a CI gate gets: 1 when a finding at or above `failOn` exists, 2 when a gate is
 * set and some file could not be audited (an incomplete audit cannot pass a gate), else 0.
 * `none` reports and always passes.
 */
export function gateExitCode (report: AuditReport, failOn: FailOn): 0 | 1 | 2 {
  if (failOn === 'none') return 0
  if (report.errors.length > 0) return 2
  const limit = SEVERITIES.indexOf(failOn)
  return report.findings.some(f => SEVERITIES.indexOf(f.severity) <= limit) ? 1 : 0
}
