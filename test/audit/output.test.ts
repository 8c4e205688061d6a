import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { auditRepository, formatMarkdown, formatSarif, formatTable, gateExitCode } from '../../src/audit/index.js'
import { FIXTURES, removeRepos, repo } from './helpers.js'

afterAll(removeRepos)

/** Twelve services that COPY their whole tree (NR050 each), one of which also leaves a build date (NR002). */
async function manyCopies (): Promise<string> {
  const files: Record<string, string> = {}
  for (let i = 0; i < 12; i++) files[`svc${String(i).padStart(2, '0')}/Dockerfile`] = `FROM scratch\nCOPY . /app\n${i === 7 ? 'RUN date > /app/built\n' : ''}`
  return await repo(files)
}

describe('audit output', () => {
  it('counts suppressed findings in the summary line of every format', async () => {
    const report = await auditRepository(join(FIXTURES, 'suppress'))
    expect(report.suppressed).toHaveLength(2)
    expect(formatTable(report).trimEnd().split('\n').at(-2)).toMatch(/^\d+ files audited: \d+ critical, \d+ high, \d+ medium, \d+ low, 2 suppressed, 2 config errors$/)
    expect(formatMarkdown(report)).toMatch(/\*\*Counted:\*\* .*, 2 suppressed, 2 config errors\./)
    const sarif = JSON.parse(formatSarif(report)) as { runs: Array<{ results: Array<{ ruleId: string, suppressions?: Array<{ kind: string, justification: string }> }> }> }
    expect(sarif.runs[0]?.results.filter(r => r.suppressions != null).map(r => [r.ruleId, r.suppressions?.[0]?.kind])).toEqual([['NR052-logs-left', 'inSource'], ['NR050-copy-metadata-implicit', 'external']])
  })

  it('names configuration errors as such, apart from files that could not be audited', async () => {
    const report = await auditRepository(join(FIXTURES, 'suppress'))
    expect(report.errors.every(e => e.kind === 'config')).toBe(true)
    const table = formatTable(report)
    expect(table).toMatch(/CONFIG ERRORS \(2\)/)
    expect(table).toContain('  .neko-rebuilder-audit.yaml: suppress[1] (NR051): a "reason" is required')
    expect(table).not.toMatch(/not audited/)
    expect(formatMarkdown(report)).toMatch(/## Configuration errors[\s\S]*suppress\[1\]/)
    expect(formatMarkdown(report)).not.toMatch(/## Errors/)
    // A wrong configuration still cannot pass a gate.
    expect(gateExitCode(report, 'critical')).toBe(2)
  })

  it('shows many findings of one low rule as one block after the rest, so they do not bury them', async () => {
    const report = await auditRepository(await manyCopies())
    expect(report.findings.filter(f => f.ruleId === 'NR050-copy-metadata-implicit')).toHaveLength(12)
    const table = formatTable(report)
    const lines = table.split('\n')
    const block = lines.findIndex(l => l.startsWith('  NR050-copy-metadata-implicit  12 findings in 12 files'))
    expect(block).toBeGreaterThan(lines.indexOf('LOW (12)'))
    expect(lines[block + 1]).toMatch(/svc00\/Dockerfile:2:1, svc01\/Dockerfile:2:1, svc02\/Dockerfile:2:1 and 9 more \(.*--exclude NR050 leaves them out\)/)
    // every other finding is listed as before, first
    expect(table.indexOf('svc07/Dockerfile:3')).toBeGreaterThan(-1)
    expect(table.indexOf('svc07/Dockerfile:3')).toBeLessThan(table.indexOf('NR050-copy-metadata-implicit  12'))
    expect(table.match(/NR050/g)?.length).toBe(2)
  })

  it('leaves out rules and paths given to --exclude, counts them, and calls a pattern that matches nothing a config error', async () => {
    const root = await manyCopies()
    const report = await auditRepository(root, { exclude: ['NR050', 'svc0[0-6]/**'] })
    expect(report.findings.map(f => `${f.ruleId} ${f.path}:${f.line}`)).toEqual(['NR002-build-time-embedded svc07/Dockerfile:3'])
    expect(report.files.map(f => f.path)).toEqual(['svc07/Dockerfile', 'svc08/Dockerfile', 'svc09/Dockerfile', 'svc10/Dockerfile', 'svc11/Dockerfile'])
    expect(report.excluded).toBe(5)
    expect(report.errors).toEqual([])
    expect(formatTable(report)).toMatch(/5 files audited: 1 critical, 0 high, 0 medium, 0 low, 5 excluded/)
    const typo = await auditRepository(root, { exclude: ['NR999', 'nothing/**'] })
    expect(typo.errors).toEqual([
      { path: 'NR999', message: '--exclude names no rule', kind: 'config' },
      { path: 'nothing/**', message: '--exclude matches no audited file', kind: 'config' }
    ])
    expect(gateExitCode(typo, 'critical')).toBe(2)
  })

  it('says "1 file audited" for one, as the count reads', async () => {
    const one = await auditRepository(await manyCopies(), { exclude: ['svc0*/**', 'svc10/**'] })
    expect(one.files.map(f => f.path)).toEqual(['svc11/Dockerfile'])
    expect(formatTable(one)).toMatch(/^1 file audited: 0 critical, 0 high, 0 medium, 1 low$/m)
  })
})
