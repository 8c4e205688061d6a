import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { createFixtureProject, type FixtureProject } from '../../src/node/devnet/fixture-project.js'
import { decodeMessage } from '../../src/protocol/messages.js'
import { runCli, type CliResult } from '../rebuilder/cli-runner.js'

const MAIN = join(import.meta.dirname, '../../src/cli/main.ts')

async function cli (args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return await runCli(args, { env })
}

/** stdout and stderr into one pipe, as a terminal or `2>&1` shows them. */
function cliMerged (args: string[], env: Record<string, string>): Promise<{ code: number | null, out: string }> {
  return new Promise(resolve => {
    const child = spawn('sh', ['-c', 'exec "$@" 2>&1', 'sh', process.execPath, '--import', 'tsx', MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.on('close', code => { resolve({ code, out }) })
  })
}

function expectOneLine (r: CliResult, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr.trim().split('\n')).toHaveLength(1)
  expect(r.stderr).toMatch(pattern)
}

describe('commands beside a running node', () => {
  let dir: string
  let dataDir: string
  let node: ChildProcess
  let exited: Promise<unknown>
  let address: string
  let project: FixtureProject

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-running-'))
    dataDir = join(dir, 'data')
    project = await createFixtureProject({ dir: join(dir, 'project') })
    expect((await cli(['keygen', '--out', join(dir, 'announcer')])).code).toBe(EXIT.OK)
    node = spawn(process.execPath, ['--import', 'tsx', MAIN, 'join', '--json', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dataDir],
      { env: { ...process.env, NEKO_LOG_LEVEL: 'warn', NEKO_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'ignore'] })
    exited = new Promise(resolve => node.once('exit', resolve))
    const summary = await new Promise<{ listen: string[] }>((resolve, reject) => {
      createInterface({ input: node.stdout! }).once('line', line => { resolve(JSON.parse(line) as { listen: string[] }) })
      void exited.then(() => { reject(new Error('join exited early')) })
    })
    address = summary.listen[0]!
  }, 120_000)

  afterAll(async () => {
    if (node != null && node.exitCode == null) { node.kill('SIGTERM'); await exited }
    if (dir != null) await rm(dir, { recursive: true, force: true })
  })

  it('a second join on the same data dir says the node there holds it, in one line', async () => {
    const r = await cli(['join', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', dataDir])
    expect(r.code).toBe(EXIT.ERROR)
    expectOneLine(r, /StoreLockedError: the store at .*\/store is locked by a running node; one node per data directory: stop the node running on .*\/data, or pass another --data-dir/)
    expect(r.stderr).not.toMatch(/IO error|Resource temporarily unavailable/)
  }, 300_000)

  it('jobs retry reaches the node through its data dir; a wrong target or no node is one line', async () => {
    const target = `${project.repository}@${project.commit}#default@linux/amd64`
    const unknown = await cli(['jobs', 'retry', target, '--data-dir', dataDir])
    expect(unknown.code).toBe(EXIT.ERROR)
    expectOneLine(unknown, /NodeControlError: JobNotFoundError: no job for .*#default@linux\/amd64 on this node/)
    const malformed = await cli(['jobs', 'retry', 'v1.0.0', '--data-dir', dataDir])
    expect(malformed.code).toBe(EXIT.USAGE)
    expectOneLine(malformed, /target: targetKey: not <repository>@<commit>#<variant>@<platform>/)
    const nobody = await cli(['jobs', 'retry', target, '--data-dir', join(dir, 'elsewhere')])
    expect(nobody.code).toBe(EXIT.ERROR)
    expectOneLine(nobody, /no node runs with this data dir \(no control socket at .*elsewhere\/control\.sock\)/)
  }, 300_000)

  it('announce --to prints its result after every log record; one target is "1 target"; a loose key\'s mode reads 0644', async () => {
    const key = join(dir, 'announcer')
    await chmod(join(key, 'private.pem'), 0o644)
    const r = await cliMerged(['announce', '--repo', project.repository, '--tag', project.tag, '--key', key, '--to', address, '--platform', 'linux/amd64', '--timeout', '20'],
      { NEKO_LOG_LEVEL: 'info', NEKO_LOG_FORMAT: 'json' })
    expect(r.code, r.out).toBe(EXIT.OK)
    const lines = r.out.trim().split('\n')
    const result = lines.at(-1) ?? ''
    expect(result).toMatch(/^sent .* \(commit [0-9a-f]{40}, 1 target, recipe .*\) as [0-9a-f]{64} to 1 peer\(s\)/)
    const records = lines.slice(0, -1).map(l => JSON.parse(l) as { msg?: string, mode?: string })
    expect(records.map(l => l.msg)).toContain('p2p node stopped')
    expect(records.find(l => l.msg?.startsWith('private key is readable') === true)?.mode).toBe('0644')
  }, 300_000)

  it('announce --to a dead port says why in the log, without a stack', async () => {
    const peer = address.split('/p2p/')[1]!
    const r = await cli(['announce', '--repo', project.repository, '--tag', project.tag, '--key', join(dir, 'announcer'), '--to', `/ip4/127.0.0.1/tcp/1/p2p/${peer}`, '--timeout', '2'],
      { NEKO_LOG_LEVEL: 'info', NEKO_LOG_FORMAT: 'json' })
    expect(r.code).toBe(EXIT.ERROR)
    const lines = r.stderr.trim().split('\n')
    expect(lines.at(-1), r.stderr).toMatch(/^neko-rebuilder: NotDeliveredError: could not reach any of \/ip4\/127\.0\.0\.1\/tcp\/1\//)
    const dial = lines.slice(0, -1).map(l => JSON.parse(l) as Record<string, unknown>).find(l => l.msg === 'could not dial; trying again until the timeout')
    expect(dial?.error).toMatch(/ECONNREFUSED/)
    expect(r.stderr).not.toMatch(/"stack"|\n\s+at /)
  }, 300_000)
  it('announce --repo . names the repository by its absolute path, which other nodes can read', async () => {
    const r = await runCli(['announce', '--repo', '.', '--tag', project.tag, '--key', join(dir, 'announcer')], { cwd: project.repository })
    expect(r.code, r.stderr).toBe(EXIT.OK)
    const m = decodeMessage(r.stdout.trim(), { allowEmbeddedKeys: true })
    expect(m.kind === 'announcement' ? m.announcement.repository : undefined).toBe(project.repository)
    // A path that is not there is said before anything is signed.
    const missing = await cli(['announce', '--repo', join(dir, 'nosuch'), '--tag', project.tag, '--key', join(dir, 'announcer')])
    expect(missing.code).toBe(EXIT.ERROR)
    expect(missing.stdout).toBe('')
    expectOneLine(missing, /^neko-rebuilder: SourceError: repository \S+nosuch is neither a URL nor an existing path\n$/)
  }, 300_000)

  it('announce --platform linux/s390x of a repository without a recipe announces that platform, as recipes.md says', async () => {
    const r = await cli(['announce', '--repo', project.repository, '--tag', project.tag, '--key', join(dir, 'announcer'), '--platform', 'linux/s390x'])
    expect(r.code, r.stderr).toBe(EXIT.OK)
    const m = decodeMessage(r.stdout.trim(), { allowEmbeddedKeys: true })
    expect(m.kind === 'announcement' ? m.announcement.targets : undefined).toEqual([{ variant: 'default', platform: 'linux/s390x' }])
    expect(m.kind === 'announcement' ? m.announcement.recipe.name : undefined).toBe('default')
  }, 300_000)
})
