import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRepository } from '../../src/audit/index.js'
import { parseSuppressions } from '../../src/audit/suppress.js'
import { FIXTURES } from './helpers.js'

describe('suppressing findings, each with a reason', () => {
  it('waives findings by inline comment and by the suppression file, and reports what lacks a reason', async () => {
    const report = await auditRepository(join(FIXTURES, 'suppress'))
    expect(report.suppressed.map(f => [f.ruleId, `${f.path}:${f.line}`, f.suppressed.by, f.suppressed.reason])).toEqual([
      ['NR052-logs-left', 'app/Dockerfile:3', 'inline', 'the logs are removed by the squash step of our release script'],
      ['NR050-copy-metadata-implicit', 'app/Dockerfile:4', 'config', 'the release build runs with normalised checkout modes']
    ])
    const kept = report.findings.map(f => `${f.ruleId} ${f.path}:${f.line}`)
    // The NR010 comment has no reason: the finding stands, and the comment is reported.
    expect(kept).toContain('NR010-apt-unpinned app/Dockerfile:5')
    // The file's NR050 entry is limited to app/**.
    expect(kept).toContain('NR050-copy-metadata-implicit dev/Dockerfile:2')
    expect(report.errors).toEqual([
      { path: '.neko-rebuilder-audit.yaml', message: 'suppress[1] (NR051): a "reason" is required', kind: 'config' },
      { path: 'app/Dockerfile', message: 'line 5: a neko-rebuilder-audit ignore comment needs a reason', kind: 'config' }
    ])
    expect(report.summary.critical + report.summary.high + report.summary.medium + report.summary.low).toBe(report.findings.length)
  })

  it('ranks development-only files below what a release build reads, within a severity', async () => {
    const report = await auditRepository(join(FIXTURES, 'suppress'))
    const low = report.findings.filter(f => f.severity === 'low').map(f => f.path)
    expect(low.indexOf('dev/Dockerfile')).toBeGreaterThan(-1)
    expect(low.filter(p => p !== 'dev/Dockerfile').every(p => low.indexOf(p) < low.indexOf('dev/Dockerfile'))).toBe(true)
  })

  it('refuses a malformed suppression file with a clear error', () => {
    expect(parseSuppressions('suppress: {rule: NR050}').errors).toEqual([{ path: '.neko-rebuilder-audit.yaml', message: '"suppress" must be a list', kind: 'config' }])
    expect(parseSuppressions('suppress:\n  - rule: bogus\n    reason: x').errors[0]?.message).toMatch(/"rule" must be a rule id/)
    expect(parseSuppressions(': : :').errors[0]?.message).toMatch(/^not valid YAML/)
  })
})
