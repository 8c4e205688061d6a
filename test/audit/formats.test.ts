import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import AjvDraft04 from 'ajv-draft-04'
import addFormats from 'ajv-formats'
import { beforeAll, describe, expect, it } from 'vitest'
import { auditRepository, formatJson, formatMarkdown, formatReport, formatSarif, formatTable, RULES } from '../../src/audit/index.js'
import type { AuditReport } from '../../src/audit/index.js'
import { FIXTURES } from './helpers.js'

const require = createRequire(import.meta.url)
const reportSchema = JSON.parse(readFileSync(new URL('../../src/audit/schema/report.schema.json', import.meta.url), 'utf8')) as object
// The official SARIF 2.1.0 (rtm.5) schema, as shipped in an npm package (draft-04).
const sarifSchema = JSON.parse(readFileSync(require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json'), 'utf8')) as object

describe('report formats', () => {
  let neko: AuditReport
  let broken: AuditReport
  let clean: AuditReport
  beforeAll(async () => {
    neko = await auditRepository(join(FIXTURES, 'neko-like'))
    broken = await auditRepository(join(FIXTURES, 'malformed'))
    clean = await auditRepository(join(FIXTURES, 'rules', 'NR021-add-url-unverified', 'negative'))
  })

  it('JSON validates against the report schema, and the schema rejects a wrong report', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true })
    const validate = ajv.compile(reportSchema)
    for (const report of [neko, broken, clean]) {
      const json = JSON.parse(formatJson(report)) as Record<string, unknown>
      expect(validate(json), JSON.stringify(validate.errors)).toBe(true)
    }
    const json = JSON.parse(formatJson(neko)) as { findings: Array<Record<string, unknown>> }
    expect(json.findings.length).toBe(neko.findings.length)
    ;(json.findings[0] as Record<string, unknown>).severity = 'severe'
    expect(validate(json)).toBe(false)
  })

  it('SARIF validates against the official SARIF 2.1.0 schema and maps rules, levels and locations', () => {
    // The official schema's `language` pattern has a stray `]` that is only valid without the u flag.
    const ajv = new AjvDraft04.default({ allErrors: true, strict: false, unicodeRegExp: false })
    addFormats.default(ajv)
    const validate = ajv.compile(sarifSchema)
    for (const report of [neko, broken, clean]) {
      const sarif = JSON.parse(formatSarif(report)) as unknown
      expect(validate(sarif), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
    }
    // the schema is strict enough to catch a wrong level
    const wrong = JSON.parse(formatSarif(neko)) as { runs: Array<{ results: Array<{ level: string }> }> }
    ;(wrong.runs[0]?.results[0] as { level: string }).level = 'critical'
    expect(validate(wrong)).toBe(false)
    const sarif = JSON.parse(formatSarif(neko)) as {
      version: string
      runs: Array<{
        tool: { driver: { rules: Array<{ id: string, shortDescription: { text: string }, help: { text: string }, defaultConfiguration: { level: string } }> } }
        results: Array<{ ruleId: string, ruleIndex: number, level: string, locations: Array<{ physicalLocation: { artifactLocation: { uri: string }, region: { startLine: number } } }> }>
      }>
    }
    expect(sarif.version).toBe('2.1.0')
    const run = sarif.runs[0]
    expect(run?.tool.driver.rules.map(r => r.id)).toEqual(RULES.map(r => r.id))
    expect(run?.tool.driver.rules.find(r => r.id === 'NR001-base-image-unpinned')?.defaultConfiguration.level).toBe('error')
    expect(run?.tool.driver.rules.find(r => r.id === 'NR043-action-unpinned')?.defaultConfiguration.level).toBe('warning')
    expect(run?.tool.driver.rules.find(r => r.id === 'NR050-copy-metadata-implicit')?.defaultConfiguration.level).toBe('note')
    const date = run?.results.find(r => r.ruleId === 'NR002-build-time-embedded')
    expect(date?.level).toBe('error')
    expect(date?.locations[0]?.physicalLocation.artifactLocation.uri).toBe('server/build')
    expect(date?.locations[0]?.physicalLocation.region.startLine).toBe(33)
    expect(run?.tool.driver.rules[date?.ruleIndex ?? -1]?.id).toBe('NR002-build-time-embedded')
    expect(run?.results).toHaveLength(neko.findings.length)
    expect(run?.results.every(r => !r.locations[0]?.physicalLocation.artifactLocation.uri.startsWith('/'))).toBe(true)
  })

  it('SARIF lists unreadable files as tool notifications', () => {
    const sarif = JSON.parse(formatSarif(broken)) as { runs: Array<{ invocations: Array<{ executionSuccessful: boolean, toolExecutionNotifications: unknown[] }> }> }
    expect(sarif.runs[0]?.invocations[0]?.executionSuccessful).toBe(false)
    expect(sarif.runs[0]?.invocations[0]?.toolExecutionNotifications).toHaveLength(broken.errors.length)
  })

  it('markdown has the summary, findings with file:line and text, why, fixes and a fix priority', () => {
    const md = formatMarkdown(neko)
    for (const heading of ['# Reproducibility audit', '## Summary', '## Findings', '### Critical', '### High', '### Medium', '### Low', '## Fix priority', '### Phase 1: critical, fix first', '## Files audited']) {
      expect(md).toContain(`${heading}\n`)
    }
    expect(md).toContain('| **Critical** | 25 |')
    expect(md).toContain('`server/build:33`')
    expect(md).toContain("``-X 'm1k1o/neko.buildDate=`date -u +'%Y-%m-%dT%H:%M:%SZ'`'``")
    expect(md).toContain('**Why it breaks reproducibility:**')
    expect(md).toContain('**Fix:** Pin every base, build-tool and CI job or service image by digest')
    expect(md).toContain('NOT REPRODUCIBLE')
    expect(md).not.toContain('## Errors')
    expect(formatMarkdown(broken)).toContain('## Errors')
    expect(formatMarkdown(clean)).toContain('no causes of non-reproducibility found')
  })

  it('the table groups findings by severity, most severe first, and lists errors', () => {
    const table = formatTable(neko)
    const order = ['CRITICAL (25)', 'HIGH (', 'MEDIUM (', 'LOW ('].map(h => table.indexOf(h))
    expect(order.every(i => i >= 0)).toBe(true)
    expect(order).toEqual([...order].sort((a, b) => a - b))
    expect(table).toMatch(/server\/build:33:\d+ +NR002-build-time-embedded/)
    expect(table).not.toContain('\x1b[')
    expect(formatTable(neko, { color: true })).toContain('\x1b[')
    expect(formatTable(broken)).toMatch(/ERRORS \(\d+\): not audited/)
    expect(formatReport(neko, 'table')).toBe(table)
  })
})
