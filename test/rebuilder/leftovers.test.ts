import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Dockerode from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { LOCK_LABEL } from '../../src/node/rebuilder/engine-lock.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { runCli } from './cli-runner.js'

const available = engineAvailable('build: leftovers of killed and failed rebuilds') && busyboxAvailable('amd64')
const MAIN = resolve(fileURLToPath(import.meta.url), '../../../src/cli/main.ts')

/** Command lines of the processes running now that mention `needle`. */
function processesWith (needle: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args=']).toString().split('\n').filter(l => l.includes(needle) && !l.includes('ps -eo'))
}

async function until (what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

describe.skipIf(!available)('what a killed, interrupted or failed rebuild leaves behind', () => {
  let work: string
  let slow: FixtureRepo
  let broken: FixtureRepo

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'leftovers-test-'))
    slow = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['RUN sleep 120']) }, busybox: 'amd64', tag: 'v1.0.0' }, work)
    broken = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['RUN echo about to fail && exit 3']) }, busybox: 'amd64', tag: 'v1.0.0' }, work)
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('kill -9 takes its buildx along; the next start removes its workspace and its build lock', async () => {
    const workDir = join(work, 'killed')
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'rebuild', '--repo', slow.dir, '--ref', 'v1.0.0', '--work-dir', workDir], {
      env: { ...process.env, NEKO_LOG_LEVEL: 'silent' },
      stdio: 'ignore'
    })
    const exited = new Promise(resolve => child.on('exit', resolve))
    await until('buildx to run', () => processesWith(workDir).some(l => l.includes('buildx build')), 90_000)
    child.kill('SIGKILL')
    await exited
    // The kernel kills the docker CLI with its parent; the buildx plugin cancels with the CLI.
    await until('no buildx of the killed rebuild', () => processesWith(workDir).length === 0, 15_000)

    expect((await readdir(workDir)).filter(n => n.startsWith('rebuild-'))).toHaveLength(1)
    const docker = new Dockerode()
    const locksBefore = (await docker.listContainers({ all: true, filters: { label: [LOCK_LABEL] } })).filter(n => n.Labels[`${LOCK_LABEL}.holder`]?.includes(` ${child.pid} `) === true)
    expect(locksBefore).toHaveLength(1)
    const swept = await createRebuilder({}, { workDir }).sweep()
    expect(swept.workspaces).toBe(1)
    expect(swept.locks).toBeGreaterThanOrEqual(1)
    expect((await readdir(workDir)).filter(n => n.startsWith('rebuild-'))).toEqual([])
    await expect(docker.getContainer(locksBefore[0]!.Id).inspect()).rejects.toMatchObject({ statusCode: 404 })
  }, 240_000)

  it('Ctrl-C exits 130 with one line and leaves no tarball, workspace or buildx', async () => {
    const workDir = join(work, 'interrupted')
    const out = join(work, 'interrupted-out')
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'rebuild', '--repo', slow.dir, '--ref', 'v1.0.0', '--work-dir', workDir, '--out', out], {
      env: { ...process.env, NEKO_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
    await until('buildx to run', () => processesWith(workDir).some(l => l.includes('buildx build')), 90_000)
    child.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toBe('neko-rebuilder: interrupted\n')
    expect(stdout).toBe('')
    expect((await readdir(out)).filter(n => n.endsWith('.tar'))).toEqual([])
    expect((await readdir(workDir)).filter(n => n.startsWith('rebuild-'))).toEqual([])
    await until('no buildx of the interrupted rebuild', () => processesWith(workDir).length === 0, 15_000)
  }, 240_000)

  it('a failed rebuild --out leaves its log and no tarball', async () => {
    const out = join(work, 'failed-out')
    const r = await runCli(['rebuild', '--repo', broken.dir, '--ref', 'v1.0.0', '--out', out, '--work-dir', join(work, 'failed')])
    expect(r.code).toBe(5)
    expect(r.stdout).toContain('FAILED      build-failed')
    const files = await readdir(out)
    expect(files.filter(n => n.endsWith('.tar'))).toEqual([])
    expect(files.filter(n => n.endsWith('.log'))).toHaveLength(1)
  }, 120_000)
})
