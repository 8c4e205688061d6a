import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRepository, gateExitCode } from '../../src/audit/index.js'
import { FIXTURES } from './helpers.js'

describe('--fail-on gate', () => {
  it('fails at or above the chosen severity, passes below it, and never with none', async () => {
    const neko = await auditRepository(join(FIXTURES, 'neko-like'))
    const mediumOnly = await auditRepository(join(FIXTURES, 'rules', 'NR043-action-unpinned', 'positive'))
    const lowOnly = await auditRepository(join(FIXTURES, 'rules', 'NR050-copy-metadata-implicit', 'positive'))
    const clean = await auditRepository(join(FIXTURES, 'rules', 'NR021-add-url-unverified', 'negative'))
    expect(new Set(mediumOnly.findings.map(f => f.severity))).toEqual(new Set(['medium']))
    expect(new Set(lowOnly.findings.map(f => f.severity))).toEqual(new Set(['low']))
    expect(clean.findings).toEqual([])
    for (const s of ['critical', 'high', 'medium', 'low'] as const) expect(gateExitCode(neko, s)).toBe(1)
    expect([gateExitCode(mediumOnly, 'critical'), gateExitCode(mediumOnly, 'high'), gateExitCode(mediumOnly, 'medium'), gateExitCode(mediumOnly, 'low')]).toEqual([0, 0, 1, 1])
    expect([gateExitCode(lowOnly, 'medium'), gateExitCode(lowOnly, 'low')]).toEqual([0, 1])
    expect(gateExitCode(clean, 'low')).toBe(0)
    expect(gateExitCode(neko, 'none')).toBe(0)
  })

  it('an audit with unreadable files cannot pass a gate', async () => {
    const broken = await auditRepository(join(FIXTURES, 'malformed'))
    expect(broken.errors.length).toBeGreaterThan(0)
    expect(gateExitCode(broken, 'critical')).toBe(2)
    expect(gateExitCode(broken, 'none')).toBe(0)
  })
})
