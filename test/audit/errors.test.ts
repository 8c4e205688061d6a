import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AuditRootError, auditRepository } from '../../src/audit/index.js'
import { FIXTURES, placesOf } from './helpers.js'

describe('unreadable and malformed files', () => {
  let root: string
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-audit-'))
    await cp(join(FIXTURES, 'malformed'), root, { recursive: true })
    // Tests run as root, so chmod 000 would not stop a read: use things that cannot be read as files.
    await symlink(join(root, 'does-not-exist'), join(root, 'Dockerfile.gone'))
    await mkdir(join(root, 'build.sh'))
    await writeFile(join(root, 'huge.sh'), `#!/bin/sh\n${'#'.repeat(2 * 1024 * 1024)}\n`)
  })
  afterAll(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('lists each one in errors with what was wrong, and audits the rest', async () => {
    const report = await auditRepository(root)
    const errors = Object.fromEntries(report.errors.map(e => [e.path, e.message]))
    expect(Object.keys(errors).sort()).toEqual(['.github/workflows/broken.yml', 'Dockerfile.gone', 'bad/Dockerfile', 'bad/unclosed.sh', 'build.sh', 'huge.sh'])
    expect(errors['Dockerfile.gone']).toMatch(/broken symbolic link/)
    expect(errors['build.sh']).toMatch(/is a directory/)
    expect(errors['huge.sh']).toMatch(/exceeds the limit of 2097152/)
    expect(errors['.github/workflows/broken.yml']).toMatch(/^malformed workflow: /)
    expect(errors['bad/Dockerfile']).toMatch(/line 1: RUN before the first FROM.*line 3: unknown instruction FROBNICATE/)
    expect(errors['bad/unclosed.sh']).toMatch(/line 2: unterminated double quote/)
    // the good files were still audited
    expect(placesOf(report, 'NR043-action-unpinned')).toEqual(['.github/workflows/ok.yml:6'])
    expect(placesOf(report, 'NR010-apt-unpinned')).toEqual(['Dockerfile:2'])
    // malformed files give no findings of their own
    expect(report.findings.filter(f => f.path.startsWith('bad/') || f.path.endsWith('broken.yml'))).toEqual([])
  })

  it('refuses a root that is missing or not a directory', async () => {
    await expect(auditRepository(join(root, 'nope'))).rejects.toBeInstanceOf(AuditRootError)
    await expect(auditRepository(join(root, 'Dockerfile'))).rejects.toThrow(/is not a directory/)
  })
})
