import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { auditRepository } from '../../src/audit/index.js'
import type { AuditReport, Severity } from '../../src/audit/index.js'
import { FIXTURES, find, placesOf } from './helpers.js'

/**
 * The fixture mirrors the layout of Neko's repository at the lines the reproducibility
 * analysis cites; each case below is one issue of that analysis, at its file:line.
 */
const SEED: Array<[string, string, number, Severity, RegExp?]> = [
  // 1. Base images not pinned by digest
  ['NR001-base-image-unpinned', 'server/Dockerfile', 1, 'critical', /golang:1\.24-bullseye/],
  ['NR001-base-image-unpinned', 'client/Dockerfile', 1, 'critical', /node:18-bullseye-slim/],
  ['NR001-base-image-unpinned', 'runtime/Dockerfile', 1, 'critical', /debian:bullseye-slim/],
  ['NR001-base-image-unpinned', 'runtime/Dockerfile.bookworm', 1, 'critical', /debian:bookworm-slim/],
  ['NR001-base-image-unpinned', 'runtime/Dockerfile.nvidia', 9, 'critical', /ubuntu:\$\{UBUNTU_RELEASE\}/],
  ['NR001-base-image-unpinned', 'runtime/Dockerfile.nvidia', 59, 'critical', /nvidia\/cuda:\$\{CUDA_VERSION\}-runtime-ubuntu\$\{UBUNTU_RELEASE\}/],
  ['NR001-base-image-unpinned', 'utils/xorg-deps/Dockerfile', 1, 'critical', /debian:bullseye-slim/],
  ['NR001-base-image-unpinned', 'build', 321, 'critical', /golang:1\.24-bullseye/],
  // 2. Build timestamp embedded in the binary
  ['NR002-build-time-embedded', 'server/build', 33, 'critical', /buildDate=`date -u/],
  // 3. Package versions not pinned
  ['NR010-apt-unpinned', 'runtime/Dockerfile', 16, 'high', /apt-get install/],
  ['NR010-apt-unpinned', 'runtime/Dockerfile.nvidia', 16, 'high'],
  ['NR010-apt-unpinned', 'runtime/Dockerfile.nvidia', 127, 'high'],
  ['NR010-apt-unpinned', 'server/Dockerfile', 11, 'high'],
  ['NR012-pip-unpinned', 'runtime/Dockerfile.nvidia', 36, 'high', /pip3 install meson/],
  ['NR013-npm-install-not-ci', 'client/Dockerfile', 9, 'medium', /npm install/],
  // 4. External downloads without hash verification
  ['NR020-download-unverified', 'runtime/Dockerfile', 39, 'high', /libxcvt0_0\.1\.2-1/],
  ['NR020-download-unverified', 'runtime/Dockerfile.nvidia', 142, 'high', /libxcvt0_0\.1\.2-1/],
  ['NR020-download-unverified', 'server/Dockerfile', 17, 'high', /libxcvt-dev/],
  ['NR020-download-unverified', 'server/Dockerfile', 18, 'high', /libxcvt0/],
  ['NR030-git-clone-unpinned', 'runtime/Dockerfile.nvidia', 45, 'high', /--branch \$GSTREAMER_VERSION/],
  ['NR023-gpg-key-unverified', 'runtime/Dockerfile.nvidia', 212, 'high', /virtualgl\/gpgkey/],
  ['NR024-package-source-mutable', 'runtime/Dockerfile.nvidia', 214, 'high', /VirtualGL\.list/],
  // 5. Missing BuildKit reproducibility flags
  ['NR040-source-date-epoch-missing', 'build', 161, 'medium', /docker build/],
  ['NR040-source-date-epoch-missing', 'build', 196, 'medium', /docker build/],
  ['NR041-rewrite-timestamp-missing', 'build', 161, 'medium'],
  ['NR040-source-date-epoch-missing', '.github/workflows/ghcr.yml', 18, 'medium'],
  ['NR042-build-cache-shared', '.github/workflows/ghcr.yml', 23, 'medium', /type=gha/],
  ['NR043-action-unpinned', '.github/workflows/ghcr.yml', 9, 'medium', /actions\/checkout@v4/],
  // 6. File ordering and metadata
  ['NR050-copy-metadata-implicit', 'Dockerfile.tmpl', 11, 'low', /COPY --from=xorg-deps/],
  ['NR050-copy-metadata-implicit', 'Dockerfile.tmpl', 15, 'low', /\/usr\/bin\/neko/],
  ['NR050-copy-metadata-implicit', 'runtime/Dockerfile', 83, 'low', /default\.pa/],
  ['NR050-copy-metadata-implicit', 'server/Dockerfile', 32, 'low', /COPY \. \./]
]

describe('Neko-shaped repository', () => {
  let report: AuditReport
  beforeAll(async () => {
    report = await auditRepository(join(FIXTURES, 'neko-like'))
  })

  it('audits every build file, the template among them, without errors', () => {
    expect(report.errors).toEqual([])
    expect(report.files).toEqual([
      { path: '.github/workflows/ghcr.yml', kind: 'workflow' },
      { path: 'Dockerfile.tmpl', kind: 'template' },
      { path: 'build', kind: 'script' },
      { path: 'client/Dockerfile', kind: 'dockerfile' },
      { path: 'runtime/Dockerfile', kind: 'dockerfile' },
      { path: 'runtime/Dockerfile.bookworm', kind: 'dockerfile' },
      { path: 'runtime/Dockerfile.nvidia', kind: 'dockerfile' },
      { path: 'server/Dockerfile', kind: 'dockerfile' },
      { path: 'server/build', kind: 'script' },
      { path: 'utils/xorg-deps/Dockerfile', kind: 'dockerfile' }
    ])
  })

  for (const [ruleId, path, line, severity, text] of SEED) {
    it(`finds ${ruleId} at ${path}:${line} (${severity})`, () => {
      const f = find(report, ruleId, path, line)
      expect(f, `${ruleId} at ${path}:${line}; found ${placesOf(report, ruleId).join(', ')}`).toBeDefined()
      expect(f?.severity).toBe(severity)
      if (text != null) expect(f?.text).toMatch(text)
    })
  }

  it('does not flag what is already right', () => {
    // runtime/Dockerfile:81 copies with --chmod; the VirtualGL package itself is pinned; the bookworm Dockerfile pins its packages and cleans up.
    expect(find(report, 'NR050-copy-metadata-implicit', 'runtime/Dockerfile', 81)).toBeUndefined()
    expect(report.findings.filter(f => f.path === 'runtime/Dockerfile.nvidia' && f.line === 217 && f.ruleId === 'NR010-apt-unpinned')).toEqual([])
    expect(report.findings.filter(f => f.path === 'runtime/Dockerfile.bookworm').map(f => f.ruleId)).toEqual(['NR001-base-image-unpinned'])
    // the template's own relative FROMs are includes, not images
    expect(report.findings.filter(f => f.path === 'Dockerfile.tmpl' && f.ruleId === 'NR001-base-image-unpinned')).toEqual([])
  })

  it('marks files reached through the template and orders findings by severity', () => {
    expect(find(report, 'NR001-base-image-unpinned', 'server/Dockerfile', 1)?.via).toBe('Dockerfile.tmpl')
    expect(find(report, 'NR001-base-image-unpinned', 'runtime/Dockerfile', 1)?.via).toBe('Dockerfile.tmpl')
    // Dockerfile.nvidia is not what the template's RUNTIME_DOCKERFILE default includes
    expect(find(report, 'NR001-base-image-unpinned', 'runtime/Dockerfile.nvidia', 9)?.via).toBeUndefined()
    const ranks = report.findings.map(f => ['critical', 'high', 'medium', 'low'].indexOf(f.severity))
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b))
    expect(report.summary.critical).toBe(report.findings.filter(f => f.severity === 'critical').length)
    expect(report.summary.critical).toBe(25)
    // Within a severity, what ships (the build date in the binary) before leftovers, and images named by a build argument last.
    expect(report.findings[0]).toMatchObject({ ruleId: 'NR002-build-time-embedded', path: 'server/build' })
    const critical = report.findings.filter(f => f.severity === 'critical')
    const argFroms = critical.filter(f => f.ruleId === 'NR001-base-image-unpinned' && f.text.includes('$')).map(f => critical.indexOf(f))
    const literalFroms = critical.filter(f => f.ruleId === 'NR001-base-image-unpinned' && !f.text.includes('$')).map(f => critical.indexOf(f))
    expect(Math.min(...argFroms)).toBeGreaterThan(Math.max(...literalFroms))
  })
})
