import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { auditRepository } from '../../src/audit/index.js'
import { createFixtureProject } from '../../src/node/devnet/fixture-project.js'
import { removeRepos, repo } from './helpers.js'

afterAll(removeRepos)

/** Each command that writes random bytes or the clock into the image, as a RUN, a script, a quoted sh -c script, a heredoc and a workflow step would write it. */
const MISSED: Array<[string, string]> = [
  ['openssl rand -hex 16 > /etc/secret', 'NR004-random-embedded'],
  ['head -c 16 /dev/urandom > /etc/machine-id', 'NR004-random-embedded'],
  ['dd if=/dev/urandom of=/var/lib/seed bs=16 count=1', 'NR004-random-embedded'],
  ['busybox date +%s > /built-at', 'NR002-build-time-embedded']
]

describe('the audit reads shell as a shell does', () => {
  for (const [command, rule] of MISSED) {
    it(`finds ${command} wherever it is written`, async () => {
      const escaped = command.replace(/"/g, '\\"')
      const root = await repo({
        Dockerfile: `FROM scratch\nRUN set -e; \\\n  # write it\n  ${command}\n`,
        'Dockerfile.wrapped': `FROM scratch\nRUN sudo -E sh -ec "true && ${escaped}"\n`,
        'Dockerfile.heredoc': `# syntax=docker/dockerfile:1.7@sha256:${'a'.repeat(64)}\nFROM scratch\nRUN <<EOF\nset -e\nif true; then\n  ${command}\nfi\nEOF\n`,
        'build.sh': `#!/bin/sh\nmake() { ${command}; }\nmake\n`,
        '.github/workflows/ci.yml': `on: push\njobs:\n  b:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: |\n          (cd out && ${command})\n`
      })
      const report = await auditRepository(root)
      expect(report.errors).toEqual([])
      const found = report.findings.filter(f => f.ruleId === rule).map(f => `${f.path}:${f.line}`).sort()
      expect(found).toEqual(['.github/workflows/ci.yml:7', 'Dockerfile.heredoc:6', 'Dockerfile.wrapped:2', 'Dockerfile:4', 'build.sh:2'])
      for (const f of report.findings.filter(x => x.ruleId === rule)) expect(f.severity).toBe('critical')
    })
  }

  it('finds the clock and the random bytes of the fixture the network judges unreproducible, at its RUN line', async () => {
    const root = await repo({})
    const busybox = join(root, 'busybox-stand-in')
    await writeFile(busybox, '#!/bin/sh\n')
    const project = await createFixtureProject({ dir: join(root, 'project'), nondeterministicWith: busybox })
    const report = await auditRepository(project.repository)
    expect(report.errors).toEqual([])
    const critical = report.findings.filter(f => f.severity === 'critical').map(f => `${f.ruleId} ${f.path}:${f.line}`)
    expect(critical).toEqual(['NR002-build-time-embedded Dockerfile:5', 'NR004-random-embedded Dockerfile:5'])
    // the fixture has only COPY and this RUN: nothing else is critical, and the criticals come first
    expect(report.findings.slice(0, 2).map(f => f.ruleId)).toEqual(['NR002-build-time-embedded', 'NR004-random-embedded'])
  })

  it('reads an exec-form script whose JSON escapes moved it from the file\'s text, placed at its string', async () => {
    const root = await repo({ Dockerfile: 'FROM scratch\nRUN ["sh", "-c", "true \\u0026\\u0026 openssl rand -hex 4 > /k"]\n' })
    const report = await auditRepository(root)
    expect(report.findings.filter(f => f.ruleId === 'NR004-random-embedded').map(f => `${f.line}:${f.column ?? 0}`)).toEqual(['2:19'])
  })

  it('finds the clock however date is named inside a substitution', async () => {
    const root = await repo({ 'build.sh': '#!/bin/sh\ngo build -ldflags "-X main.date=$(busybox date +%s)" .\ngo build -ldflags "-X main.date=`/bin/date -u`" .\n' })
    const report = await auditRepository(root)
    expect(report.findings.filter(f => f.ruleId === 'NR002-build-time-embedded').map(f => f.line)).toEqual([2, 3])
  })

  it('reads RUN with the stage\'s SHELL: bash and busybox sh are read, PowerShell is not taken for sh', async () => {
    const root = await repo({
      Dockerfile: [
        'FROM scratch',
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
        'RUN head -c 8 /dev/urandom > /a',
        'SHELL ["powershell", "-Command"]',
        "RUN $ErrorActionPreference = 'Stop'; (date) > C:\\built.txt",
        'FROM scratch',
        'RUN date > /b',
        ''
      ].join('\n')
    })
    const report = await auditRepository(root)
    expect(report.errors).toEqual([])
    expect(report.findings.filter(f => f.severity === 'critical').map(f => `${f.ruleId} ${f.line}`)).toEqual(['NR002-build-time-embedded 7', 'NR004-random-embedded 3'])
  })

  it('does not take a random read that stays in the build for one written into the image', async () => {
    const root = await repo({ Dockerfile: 'FROM scratch\nRUN head -c 16 /dev/urandom | sha256sum && openssl rand 8 > /dev/null && dd if=/dev/zero of=/swap bs=1M count=1\n' })
    const report = await auditRepository(root)
    expect(report.findings.filter(f => f.ruleId === 'NR004-random-embedded')).toEqual([])
    expect(report.findings.filter(f => f.ruleId === 'NR003-nondeterministic-value').map(f => f.text)).toEqual(['head -c 16 /dev/urandom', 'openssl rand 8'])
  })
})
