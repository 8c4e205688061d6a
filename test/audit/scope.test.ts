import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { auditRepository } from '../../src/audit/index.js'
import type { AuditReport } from '../../src/audit/index.js'
import { loadRecipe, parseRecipe } from '../../src/node/rebuilder/recipe.js'
import { FIXTURES } from './helpers.js'

const ROOT = join(FIXTURES, 'recipe-scope')
const NEKO = join(FIXTURES, 'neko-like')

const places = (list: AuditReport['findings']): string[] => list.map(f => `${f.ruleId.slice(0, 5)} ${f.path}:${f.line}`).sort()
const skippedAt = (report: AuditReport, rule: string, path: string, line: number): string | undefined =>
  report.skipped.find(f => f.ruleId.startsWith(rule) && f.path === path && f.line === line)?.outside

describe('audit scope from a recipe', () => {
  it('without a recipe every file and stage counts, as any stage may be built', async () => {
    const report = await auditRepository(ROOT)
    expect(report.skipped).toEqual([])
    expect(places(report.findings)).toEqual(expect.arrayContaining([
      'NR052 Dockerfile:6', 'NR052 Dockerfile:22', 'NR001 dev/Dockerfile:1', 'NR043 .github/workflows/ci.yml:7', 'NR040 scripts/release.sh:3'
    ]))
  })

  it('skips files no build of the recipe reads, stages its target never uses, and leftovers that stay in builder stages', async () => {
    const recipe = await loadRecipe(join(ROOT, 'recipe.json'))
    const report = await auditRepository(ROOT, { recipe })
    expect(report.errors).toEqual([])
    // What reaches the image of the target `app` stays, in the builder stage too.
    expect(places(report.findings)).toEqual([
      'NR001 Dockerfile:4', // the compiler image builds the binary that is copied
      'NR002 scripts/build.sh:3', // run by `RUN ./scripts/build.sh` in builder; the date is in /out/app
      'NR010 Dockerfile:11',
      'NR010 Dockerfile:14', // what fonts installs drifts, and its fonts are copied
      'NR010 Dockerfile:6', // builder's libraries drift into the binary
      'NR050 Dockerfile:17',
      'NR050 Dockerfile:18',
      'NR050 Dockerfile:19',
      'NR050 Dockerfile:7',
      'NR052 Dockerfile:11', // rootfs is copied whole (`COPY --from=rootfs / /`)
      'NR054 Dockerfile:11',
      'NR056 Dockerfile:11'
    ])
    expect(report.summary).toEqual({ critical: 5, high: 3, medium: 0, low: 4 })
    // Leftovers of stages that reach the image only through COPY --from of other paths.
    expect(skippedAt(report, 'NR052', 'Dockerfile', 6)).toBe('stage builder reaches recipe example variant app only through COPY --from of /out/app; /var/log stays behind')
    expect(skippedAt(report, 'NR056', 'Dockerfile', 6)).toMatch(/\/var\/cache\/ldconfig stays behind/)
    expect(skippedAt(report, 'NR055', 'Dockerfile', 14)).toBe('stage fonts reaches recipe example variant app only through COPY --from of /usr/share/fonts/truetype/dejavu; /var/cache/fontconfig stays behind')
    // A stage after the target is never built.
    expect(skippedAt(report, 'NR010', 'Dockerfile', 22)).toBe('stage debug is not built for recipe example variant app')
    expect(skippedAt(report, 'NR001', 'Dockerfile', 21)).toBe('stage debug is not built for recipe example variant app')
    // FROM ${BASE}: the recipe passes a digest.
    expect(skippedAt(report, 'NR001', 'Dockerfile', 10)).toMatch(/sets BASE to debian:trixie-slim@sha256:0+1$/)
    // Files no variant reads.
    expect(skippedAt(report, 'NR001', 'docker/Dockerfile.debug', 1)).toBe('no variant of recipe example builds this file')
    expect(skippedAt(report, 'NR016', 'dev/Dockerfile', 2)).toBe('no variant of recipe example builds this file')
    expect(skippedAt(report, 'NR040', 'scripts/release.sh', 3)).toBe('no stage that recipe example builds runs this script')
    expect(skippedAt(report, 'NR065', 'dev/Dockerfile', 2)).toMatch(/^no variant of recipe example builds/)
    expect(skippedAt(report, 'NR043', '.github/workflows/ci.yml', 7)).toBe('recipe example rebuilds without the workflows')
    expect(report.skipped).toHaveLength(19)
  })

  it('with all, keeps skipped findings after the others of their severity, each with its reason', async () => {
    const recipe = await loadRecipe(join(ROOT, 'recipe.json'))
    const report = await auditRepository(ROOT, { recipe, all: true })
    expect(report.skipped).toEqual([])
    expect(report.findings).toHaveLength(31)
    expect(report.summary).toEqual({ critical: 18, high: 6, medium: 3, low: 4 })
    const critical = report.findings.filter(f => f.severity === 'critical')
    const firstOutside = critical.findIndex(f => f.outside != null)
    expect(firstOutside).toBe(5)
    expect(critical.slice(firstOutside).every(f => f.outside != null)).toBe(true)
  })

  it('without a target the last stage is built, so a stage after the app counts', async () => {
    const recipe = parseRecipe({ name: 'last', variants: [{ name: 'debug', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile' } }] })
    const report = await auditRepository(ROOT, { recipe })
    expect(places(report.findings)).toContain('NR010 Dockerfile:22')
    // Nothing copies from builder into debug: none of builder is built for it, the build date included.
    expect(skippedAt(report, 'NR002', 'scripts/build.sh', 3)).toBe('no stage that recipe last builds runs this script')
    expect(skippedAt(report, 'NR010', 'Dockerfile', 6)).toBe('stage builder is not built for recipe last variant debug')
  })

  it('a recipe the audit cannot follow drops nothing and says why', async () => {
    const recipe = parseRecipe({ name: 'elsewhere', variants: [{ name: 'x', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'build/Dockerfile' } }] })
    const report = await auditRepository(ROOT, { recipe })
    expect(report.skipped).toEqual([])
    expect(report.errors).toEqual([{ path: 'build/Dockerfile', message: expect.stringMatching(/recipe elsewhere variant x: the Dockerfile is not in the repository .*no finding is skipped/) as string, kind: 'config' }])
    const target = parseRecipe({ name: 'typo', variants: [{ name: 'x', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile', target: 'ap' } }] })
    const typo = await auditRepository(ROOT, { recipe: target })
    expect(typo.errors).toEqual([{ path: 'Dockerfile', message: 'recipe typo variant x: target stage ap is not defined', kind: 'config' }])
  })

  it('follows a template that a prepare step turns into the Dockerfile, with the runtime it chooses', async () => {
    const recipe = parseRecipe({
      name: 'neko-like',
      variants: [{
        name: 'base',
        platforms: ['linux/amd64'],
        prepare: [{ image: `golang:1.24@sha256:${'a'.repeat(64)}`, command: ['go', 'run', 'utils/docker/main.go', '-i', 'Dockerfile.tmpl'], env: { RUNTIME_DOCKERFILE: 'Dockerfile' }, stdout: 'Dockerfile' }],
        build: { context: '.', dockerfile: 'Dockerfile' }
      }]
    })
    const report = await auditRepository(NEKO, { recipe })
    expect(report.errors).toEqual([])
    // The build date of server/build reaches /usr/bin/neko; the server stage's package logs do not.
    expect(report.findings[0]).toMatchObject({ ruleId: 'NR002-build-time-embedded', path: 'server/build', line: 33 })
    expect(skippedAt(report, 'NR052', 'server/Dockerfile', 11)).toBe('stage server reaches recipe neko-like variant base only through COPY --from of /src/bin/plugins, /src/bin/neko; /var/log stays behind')
    expect(places(report.findings)).toContain('NR010 server/Dockerfile:11')
    // The chosen runtime is the image itself: its leftovers stay.
    expect(report.findings.some(f => f.path === 'runtime/Dockerfile' && f.ruleId.startsWith('NR052'))).toBe(true)
    // The other runtimes, the repository's own build script and the workflows are not read.
    expect(report.findings.filter(f => f.path.startsWith('runtime/Dockerfile.') || f.path === 'build' || f.path.startsWith('.github/'))).toEqual([])
    expect(skippedAt(report, 'NR001', 'runtime/Dockerfile.nvidia', 9)).toBe('no variant of recipe neko-like builds this file')
    expect(skippedAt(report, 'NR001', 'build', 321)).toBe('no stage that recipe neko-like builds runs this script')
  })
})
