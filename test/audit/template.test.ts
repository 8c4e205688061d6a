import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRepository } from '../../src/audit/index.js'
import { FIXTURES, find, placesOf } from './helpers.js'

const ROOT = join(FIXTURES, 'template-args')

describe('Dockerfile.tmpl includes', () => {
  it('audits included Dockerfiles as stages of one build, with the template\'s ARGs and stage names', async () => {
    const report = await auditRepository(ROOT)
    // app/Dockerfile declares BASE_IMAGE without a default: the template's default applies
    const base = find(report, 'NR001-base-image-unpinned', 'app/Dockerfile', 2)
    expect(base?.message).toContain('resolves to debian:bookworm-slim')
    expect(base?.via).toBe('Dockerfile.tmpl')
    // ${PINNED} resolves to a digest through the template, and `app` is the stage the template named
    expect(placesOf(report, 'NR001-base-image-unpinned')).toEqual(['app/Dockerfile:2', 'variants/Dockerfile.a:1'])
    expect(report.files).toContainEqual({ path: 'tools/Dockerfile.tools', kind: 'dockerfile' })
  })

  it('includes every Dockerfile a path with an unset variable can name', async () => {
    // FROM ./variants/Dockerfile.$VARIANT: the build's environment picks one, so each is audited as part of the template
    const report = await auditRepository(ROOT)
    const a = find(report, 'NR001-base-image-unpinned', 'variants/Dockerfile.a', 1)
    expect(a?.via).toBe('Dockerfile.tmpl')
    expect(a?.message).toContain('resolves to debian:bookworm-slim')
    expect(report.findings.filter(f => f.path === 'variants/Dockerfile.b')).toEqual([])
  })

  it('reports includes that cannot be followed and goes on', async () => {
    const report = await auditRepository(ROOT)
    const messages = report.errors.map(e => `${e.path}: ${e.message}`)
    expect(messages).toContainEqual(expect.stringMatching(/^missing\/Dockerfile: unreadable/))
    expect(messages).toContainEqual(expect.stringMatching(/^Dockerfile\.tmpl: line 6: include \.\/nope-\$NOPE\/ names a build argument with no default and matches no Dockerfile/))
    expect(messages).toContainEqual(expect.stringMatching(/^Dockerfile\.tmpl: line 7: include .*outside the repository/))
    expect(report.errors).toHaveLength(3)
  })

  it('with followTemplates off, audits each Dockerfile on its own', async () => {
    const report = await auditRepository(ROOT, { followTemplates: false })
    expect(report.errors).toEqual([])
    expect(placesOf(report, 'NR001-base-image-unpinned')).toEqual(['app/Dockerfile:2', 'tools/Dockerfile.tools:1', 'tools/Dockerfile.tools:2', 'variants/Dockerfile.a:1', 'variants/Dockerfile.b:1'])
    expect(find(report, 'NR001-base-image-unpinned', 'app/Dockerfile', 2)?.message).toMatch(/no default/)
    expect(report.findings.every(f => f.via == null)).toBe(true)
  })

  it('audits only the included paths when asked', async () => {
    const report = await auditRepository(ROOT, { include: ['tools/**'] })
    expect(report.files.map(f => f.path)).toEqual(['tools/Dockerfile.tools'])
    const byPrefix = await auditRepository(join(FIXTURES, 'neko-like'), { include: ['server'] })
    expect(byPrefix.files.map(f => f.path)).toEqual(['server/Dockerfile', 'server/build'])
  })
})
