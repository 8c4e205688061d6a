import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRepository, RULES } from '../../src/audit/index.js'
import { FIXTURES, placesOf } from './helpers.js'

/** Where each rule's positive fixture must be flagged; its negative fixture must give none of that rule. */
const POSITIVE: Record<string, string[]> = {
  'NR001-base-image-unpinned': ['.github/workflows/image.yml:5', '.github/workflows/image.yml:8', '.github/workflows/image.yml:10', '.github/workflows/image.yml:17', 'Dockerfile:1', 'Dockerfile:3', 'Dockerfile:6', 'Dockerfile:7', 'tools.sh:2'],
  'NR002-build-time-embedded': ['Dockerfile:2', 'build.sh:4', 'build.sh:7', 'build.sh:8'],
  'NR003-nondeterministic-value': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4', 'Dockerfile:5'],
  'NR004-random-embedded': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4', 'Dockerfile:5', 'Dockerfile:6', 'Dockerfile:7', 'Dockerfile:8', 'Dockerfile:9'],
  'NR010-apt-unpinned': ['Dockerfile:3', 'Dockerfile:8', 'Dockerfile:11', 'Dockerfile:12'],
  'NR011-apk-unpinned': ['Dockerfile:2'],
  'NR012-pip-unpinned': ['Dockerfile:2', 'Dockerfile:3'],
  'NR013-npm-install-not-ci': ['Dockerfile:3', 'Dockerfile:4'],
  'NR014-npm-package-unpinned': ['Dockerfile:2'],
  'NR015-gem-unpinned': ['Dockerfile:2'],
  'NR016-go-install-unpinned': ['Dockerfile:2'],
  'NR020-download-unverified': ['fetch.sh:3'],
  'NR021-add-url-unverified': ['Dockerfile:2'],
  'NR022-remote-script-piped': ['install.sh:2', 'install.sh:3', 'install.sh:4'],
  'NR023-gpg-key-unverified': ['Dockerfile:2'],
  'NR024-package-source-mutable': ['Dockerfile:2'],
  'NR030-git-clone-unpinned': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4'],
  'NR040-source-date-epoch-missing': ['.github/actions/image/action.yml:6', '.github/workflows/image.yml:9', 'release.sh:2', 'release.sh:3'],
  'NR041-rewrite-timestamp-missing': ['release.sh:2'],
  'NR042-build-cache-shared': ['.github/workflows/release.yml:10', 'Dockerfile:2', 'release.sh:2'],
  'NR043-action-unpinned': ['.github/actions/lint/action.yaml:4', '.github/actions/setup/action.yml:6', '.github/workflows/ci.yml:6', '.github/workflows/ci.yml:7', '.github/workflows/ci.yml:9'],
  'NR050-copy-metadata-implicit': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4'],
  'NR051-apt-lists-left': ['Dockerfile:2'],
  'NR052-logs-left': ['Dockerfile:2'],
  'NR053-account-date': ['Dockerfile:2', 'Dockerfile:3'],
  'NR054-machine-id-left': ['Dockerfile:2'],
  'NR055-font-cache-left': ['Dockerfile:2'],
  'NR056-ldconfig-cache-left': ['Dockerfile:2'],
  'NR058-python-bytecode': ['Dockerfile:2'],
  'NR060-npm-cache-left': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4'],
  'NR061-yarn-cache-left': ['Dockerfile:2', 'Dockerfile:3'],
  'NR062-pnpm-store-left': ['Dockerfile:2'],
  'NR063-pip-cache-left': ['Dockerfile:2', 'Dockerfile:3'],
  'NR064-poetry-cache-left': ['Dockerfile:2'],
  'NR065-go-cache-left': ['Dockerfile:2', 'Dockerfile:3'],
  'NR066-cargo-cache-left': ['Dockerfile:2', 'Dockerfile:3'],
  'NR067-maven-cache-left': ['Dockerfile:2'],
  'NR068-gradle-cache-left': ['Dockerfile:2'],
  'NR069-build-tool-cache-left': ['Dockerfile:2', 'Dockerfile:3', 'Dockerfile:4', 'Dockerfile:5']
}

describe('rules', () => {
  it('every registered rule has a positive and a negative fixture and an expectation here', () => {
    for (const rule of RULES) {
      expect(existsSync(join(FIXTURES, 'rules', rule.id, 'positive')), `${rule.id} positive fixture`).toBe(true)
      expect(existsSync(join(FIXTURES, 'rules', rule.id, 'negative')), `${rule.id} negative fixture`).toBe(true)
      expect(POSITIVE[rule.id], `${rule.id} expectation`).toBeDefined()
    }
    expect(Object.keys(POSITIVE).sort()).toEqual(RULES.map(r => r.id))
  })

  it('rule ids are stable in shape and unique, and each has a why and a fix', () => {
    expect(new Set(RULES.map(r => r.id)).size).toBe(RULES.length)
    for (const r of RULES) {
      expect(r.id).toMatch(/^NR\d{3}-[a-z0-9-]+$/)
      expect(r.why.length).toBeGreaterThan(20)
      expect(r.fix.length).toBeGreaterThan(20)
    }
  })

  for (const [ruleId, places] of Object.entries(POSITIVE)) {
    describe(ruleId, () => {
      it('flags the positive fixture at the right lines and severity', async () => {
        const report = await auditRepository(join(FIXTURES, 'rules', ruleId, 'positive'))
        expect(report.errors).toEqual([])
        expect(placesOf(report, ruleId)).toEqual(places)
        const severity = RULES.find(r => r.id === ruleId)?.severity
        for (const f of report.findings.filter(x => x.ruleId === ruleId)) {
          expect(f.severity).toBe(severity)
          expect(f.text.length).toBeGreaterThan(0)
          expect(f.column).toBeGreaterThan(0)
        }
      })

      it('does not flag the negative fixture', async () => {
        const report = await auditRepository(join(FIXTURES, 'rules', ruleId, 'negative'))
        expect(report.errors).toEqual([])
        expect(report.files.length).toBeGreaterThan(0)
        expect(placesOf(report, ruleId)).toEqual([])
      })
    })
  }

  it('names the offending package list and the resolved base image in messages', async () => {
    const apt = await auditRepository(join(FIXTURES, 'rules', 'NR010-apt-unpinned', 'positive'))
    expect(apt.findings.find(f => f.ruleId === 'NR010-apt-unpinned')?.message).toMatch(/^1 Debian package installed without a pinned version: curl$/)
    const base = await auditRepository(join(FIXTURES, 'rules', 'NR001-base-image-unpinned', 'positive'))
    const line3 = base.findings.find(f => f.ruleId === 'NR001-base-image-unpinned' && f.line === 3)
    expect(line3?.text).toBe('$BASE')
    expect(line3?.message).toContain('resolves to debian:12')
    expect(base.findings.find(f => f.line === 7)?.message).toMatch(/no default/)
    expect(base.findings.find(f => f.line === 1)?.message).toMatch(/frontend docker\/dockerfile:1\.7/)
  })
})
