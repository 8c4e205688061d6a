import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES } from './helpers.js'

const run = promisify(execFile)
const REPO = fileURLToPath(new URL('../../', import.meta.url))

/** Runs the real CLI; resolves with its exit code and output whatever the code. */
async function cli (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'audit', ...args], { cwd: REPO, env: { ...process.env, NEKO_LOG_LEVEL: 'silent' }, maxBuffer: 16 * 1024 * 1024 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const NEKO = join(FIXTURES, 'neko-like')

// Each run starts Node with tsx and loads every command; on a busy two-core machine that can take seconds.
describe('neko-rebuilder audit (CLI)', { timeout: 240_000 }, () => {
  let out: string
  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'neko-audit-cli-'))
  })
  afterAll(async () => {
    await rm(out, { recursive: true, force: true })
  })

  it('prints the table; exits 0 by default and 1 under --fail-on critical', async () => {
    const [plain, gated] = await Promise.all([cli(NEKO), cli(NEKO, '--fail-on', 'critical')])
    expect(plain.code).toBe(0)
    expect(plain.stdout).toContain('CRITICAL (25)')
    expect(plain.stdout).toMatch(/10 files audited: 25 critical/)
    // The full severity matrix is checked in process (gate.test.ts); this checks the wiring.
    expect(gated.code).toBe(1)
    expect(gated.stdout).toBe(plain.stdout)
  })

  it('exits 3 on a bad flag value, 2 on an error: a missing path, or files that could not be audited under a gate', async () => {
    const [bad, missing, broken] = await Promise.all([
      cli(NEKO, '--format', 'xml'),
      cli(join(out, 'missing')),
      cli(join(FIXTURES, 'malformed'), '--fail-on', 'critical')
    ])
    expect(bad.code).toBe(3)
    expect(bad.stderr).toMatch(/--format: must be one of table, markdown, json, sarif/)
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/AuditRootError/)
    expect(broken.code).toBe(2)
    expect(broken.stdout).toMatch(/ERRORS \(\d+\): not audited/)
  })

  it('writes JSON and SARIF to --output', async () => {
    const json = join(out, 'report.json')
    const r = await cli(NEKO, '--format', 'json', '--output', json)
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/25 critical, \d+ high, \d+ medium, \d+ low(, \d+ suppressed)?; report written to/)
    const report = JSON.parse(await readFile(json, 'utf8')) as { schemaVersion: number, summary: { critical: number }, findings: unknown[] }
    const lean = await cli(NEKO, '--format', 'json', '--exclude', 'NR050', 'nothing/**', '--output', join(out, 'lean.json'))
    expect(lean.stderr).toMatch(/\d+ low, \d+ excluded, 1 config error; report written to/)
    expect(lean.stderr).toMatch(/1 config error\(s\) \(suppressions, --include\/--exclude, recipe\)/)
    const leanReport = JSON.parse(await readFile(join(out, 'lean.json'), 'utf8')) as { findings: Array<{ ruleId: string }>, excluded: number }
    expect(leanReport.findings.some(f => f.ruleId.startsWith('NR050'))).toBe(false)
    expect(leanReport.excluded).toBeGreaterThan(0)
    expect(report.schemaVersion).toBe(1)
    expect(report.summary.critical).toBe(25)
    const sarif = JSON.parse((await cli(NEKO, '--format', 'sarif')).stdout) as { version: string, runs: Array<{ results: unknown[] }> }
    expect(sarif.version).toBe('2.1.0')
    expect(sarif.runs[0]?.results).toHaveLength(report.findings.length)
  })

  it('--recipe skips findings no release build is affected by, says how many, and --all shows them', async () => {
    const root = join(FIXTURES, 'recipe-scope')
    const recipe = join(root, 'recipe.json')
    const [scoped, all, gated, unknown] = await Promise.all([
      cli(root, '--recipe', recipe),
      cli(root, '--recipe', recipe, '--all'),
      cli(root, '--recipe', recipe, '--include', '.github', '--fail-on', 'medium'),
      cli(root, '--recipe', join(root, 'no-such-recipe.json'))
    ])
    expect(scoped.code).toBe(0)
    expect(scoped.stdout).toContain('19 findings in files or stages no release build reads; --all to show')
    expect(scoped.stdout).not.toContain('dev/Dockerfile')
    expect(all.stdout).toContain('dev/Dockerfile:1')
    expect(all.stdout).toContain('no release build affected: no variant of recipe example builds this file')
    expect(all.stdout).not.toContain('--all to show')
    // Skipped findings do not count for a gate: the workflow's unpinned action is not in any release build.
    expect(gated.code).toBe(0)
    expect(gated.stdout).toContain('1 finding in files or stages no release build reads; --all to show')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toMatch(/no-such-recipe\.json/)
  })

  it('prints markdown', async () => {
    const r = await cli(NEKO, '--format', 'markdown', '--include', 'server')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('## Fix priority')
    expect(r.stdout).toContain('`server/build:33`')
    expect(r.stdout).not.toContain('runtime/Dockerfile')
  })

  it('an --include that matches nothing is an error that fails a gate, not a silent pass', async () => {
    const gated = await cli(NEKO, '--format', 'json', '--include', 'sever', '--fail-on', 'critical')
    expect(gated.code).toBe(2)
    const report = JSON.parse(gated.stdout) as { errors: Array<{ path: string, message: string }>, findings: unknown[] }
    expect(report.findings).toEqual([])
    expect(report.errors).toEqual([{ path: 'sever', message: '--include matches no audited file', kind: 'config' }])
    const mixed = await cli(NEKO, '--format', 'json', '--include', 'server', 'nothing/**', '--fail-on', 'low')
    expect(mixed.code).toBe(2)
    expect((JSON.parse(mixed.stdout) as { errors: unknown[] }).errors).toEqual([{ path: 'nothing/**', message: '--include matches no audited file', kind: 'config' }])
  })
})
