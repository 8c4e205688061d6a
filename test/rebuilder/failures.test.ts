import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Dockerode from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRebuilder, RecipeError, TargetError, type Rebuilder } from '../../src/node/rebuilder/index.js'
import { UNRESOLVED_COMMIT } from '../../src/node/rebuilder/rebuilder.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signClaim } from '../../src/protocol/messages.js'
import { writeIdentity } from '../../src/node/identity-files.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxPath, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { runCli } from './cli-runner.js'

const run = promisify(execFile)
const identity = generateIdentity()
const available = engineAvailable('build: failures')
/** Builds and CLI processes share two cores with the rest of the suite: allow for a loaded machine. */
const ENGINE_TEST_TIMEOUT = 180_000

describe.skipIf(!available)('rebuild failures and prepare steps through the real engine', () => {
  let work: string
  let rebuilder: Rebuilder
  let failing: FixtureRepo
  let keyDir: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rebuild-fail-test-'))
    keyDir = join(work, 'key')
    await writeIdentity(keyDir, identity)
    rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    failing = await createFixtureRepo({
      files: {
        Dockerfile: scratchDockerfile(['RUN echo ok > /ok', 'RUN echo broken >&2 && exit 3']),
        'slow/Dockerfile': scratchDockerfile(['RUN sleep 60'])
      },
      busybox: 'amd64',
      tag: 'v1.0.0'
    }, work)
    await failing.commit({ files: { 'README.md': 'no Dockerfile change\n' }, tag: 'v1.0.1' })
    await writeFile(join(work, 'slow.json'), JSON.stringify({ name: 'slow', variants: [{ name: 'slow', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'slow/Dockerfile' } }] }))
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('a failing RUN is build-failed with the step', async () => {
    const out = await rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64' })
    expect(out.claim.result).toBeUndefined()
    expect(out.claim.failure?.class).toBe('build-failed')
    expect(out.claim.failure?.step).toBe('RUN echo broken >&2 && exit 3')
    expect(out.claim.failure?.logExcerpt).toContain('exit code: 3')
    expect(out.claim.target.commit).toBe(failing.commits[0]!.commit)
    expect(signClaim(out.claim, identity).signatures).toHaveLength(1)
  }, ENGINE_TEST_TIMEOUT)

  it('a build over its time is a timeout, and the build is stopped', async () => {
    const recipe = join(work, 'slow.json')
    const quick = createRebuilder({}, { workDir: join(work, 'ws'), timeoutMs: 4000 })
    const started = Date.now()
    const out = await quick.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe })
    expect(out.claim.failure?.class).toBe('timeout')
    expect(signClaim(out.claim, identity).signatures).toHaveLength(1)
    // Returned well before the 60 s step would have ended.
    expect(Date.now() - started).toBeLessThan(45_000)
  }, ENGINE_TEST_TIMEOUT)

  it('a caller abort stops the build, removes the workspace and rethrows the reason', async () => {
    const recipe = join(work, 'slow.json')
    const ws = join(work, 'abort-ws')
    const r = createRebuilder({}, { workDir: ws })
    const controller = new AbortController()
    const started = Date.now()
    const pending = r.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe }, {
      signal: controller.signal,
      onProgress: p => { if (p.step?.includes('sleep 60') === true) controller.abort(new Error('stop now')) }
    })
    await expect(pending).rejects.toThrow('stop now')
    expect(Date.now() - started).toBeLessThan(45_000)
    expect((await readdir(ws)).filter(n => n.startsWith('rebuild-'))).toEqual([])
  }, ENGINE_TEST_TIMEOUT)

  it('an unreachable engine is an infrastructure-error before any build (API); the CLI exits 2 in one line and signs nothing', async () => {
    const down = createRebuilder({ docker: new Dockerode({ socketPath: '/nonexistent/docker.sock' }) }, { workDir: join(work, 'ws') })
    const out = await down.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('infrastructure-error')
    expect(out.claim.failure?.message).toMatch(/does not answer/)
    expect(out.notStarted?.name).toBe('EngineNotReadyError')

    const claims = join(work, 'claims-engine')
    const cli = await runCli(['rebuild', '--repo', failing.dir, '--ref', 'v1.0.0', '--key', keyDir, '--out', claims, '--work-dir', join(work, 'ws')], { env: { DOCKER_HOST: 'unix:///nonexistent' } })
    expect(cli.code).toBe(2)
    expect(cli.stdout).toBe('')
    expect(cli.stderr.trim().split('\n')).toHaveLength(1)
    expect(cli.stderr).toMatch(/^neko-rebuilder: EngineNotReadyError: the Docker engine does not answer/)
    expect((await readdir(claims)).filter(n => n.startsWith('claim-'))).toEqual([])
  }, ENGINE_TEST_TIMEOUT)

  it('a mistyped --ref exits 2 in one line and signs nothing: no claim about commit 000…0', async () => {
    const claims = join(work, 'claims-ref')
    const cli = await runCli(['rebuild', '--repo', failing.dir, '--ref', 'v1.0.O', '--key', keyDir, '--out', claims, '--work-dir', join(work, 'ws')])
    expect(cli.code).toBe(2)
    expect(cli.stdout).toBe('')
    expect(cli.stderr.trim().split('\n')).toHaveLength(1)
    expect(cli.stderr).toMatch(/^neko-rebuilder: SourceError: .*v1\.0\.O/)
    expect((await readdir(claims)).filter(n => n.startsWith('claim-'))).toEqual([])
  }, ENGINE_TEST_TIMEOUT)

  it('a bad tag is a source-error with the null commit', async () => {
    const out = await rebuilder.rebuild({ repository: failing.dir, ref: 'v9.9.9', platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('source-error')
    expect(out.claim.failure?.message).toContain('v9.9.9')
    expect(out.claim.target.commit).toBe(UNRESOLVED_COMMIT)
    expect(out.notStarted?.name).toBe('SourceError')
    // Failure claims must be signable as they are: the wire schema accepts them.
    expect(signClaim(out.claim, identity).signatures).toHaveLength(1)
  }, ENGINE_TEST_TIMEOUT)

  it('keeps only the newest build logs', async () => {
    const ws = join(work, 'logs-ws')
    const r = createRebuilder({}, { workDir: ws, maxLogs: 2 })
    const paths: string[] = []
    for (let i = 0; i < 3; i++) paths.push((await r.rebuild({ repository: failing.dir, ref: `v9.9.${i}`, platform: 'linux/amd64' })).logPath!)
    expect((await readdir(join(ws, 'logs'))).sort()).toEqual(paths.slice(1).map(p => p.split('/').at(-1)).sort())
  }, ENGINE_TEST_TIMEOUT)

  it('a tag that points elsewhere than --commit is a source-error', async () => {
    const out = await rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.1', expectedCommit: failing.commits[0]!.commit, platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('source-error')
    expect(out.claim.failure?.message).toMatch(/points to commit [0-9a-f]{40}, not the expected/)
  }, ENGINE_TEST_TIMEOUT)

  it('a missing Dockerfile is a source-error naming it', async () => {
    const repo = await createFixtureRepo({ files: { 'README.md': 'nothing to build\n' }, tag: 'v1' }, work)
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1', platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('source-error')
    expect(out.claim.failure?.message).toMatch(/^Dockerfile does not exist/)
    // About the commit's content, not before it: a claim like any build's.
    expect(out.notStarted).toBeUndefined()
  }, ENGINE_TEST_TIMEOUT)

  it('a Dockerfile that is a symlink out of the checkout is a source-error, and nothing outside is read', async () => {
    const repo = await createFixtureRepo({ files: { Dockerfile: { symlink: '/etc/hostname' } }, tag: 'v1' }, work)
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1', platform: 'linux/amd64' })
    expect(out.claim.failure?.class).toBe('source-error')
    expect(out.claim.failure?.message).toMatch(/resolves outside the checkout/)
  }, ENGINE_TEST_TIMEOUT)

  it('usage errors throw: bad recipe field, unknown variant, platform not in the variant, unmet requirements', async () => {
    const bad = join(work, 'bad.json')
    await writeFile(bad, JSON.stringify({ name: 'bad', variants: [{ name: 'x', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile', args: { 'not a name': '1' } } }] }))
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe: bad })).rejects.toThrow(RecipeError)
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe: bad })).rejects.toThrow(/\/variants\/0\/build\/args/)
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe: 'neko', variant: 'nope' })).rejects.toThrow(TargetError)
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/arm64', recipe: 'neko', variant: 'intel' })).rejects.toThrow(/not built for linux\/arm64/)
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux amd64' })).rejects.toThrow(/not an OCI platform/)
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: `linux/${'a'.repeat(60)}` })).rejects.toThrow(/not an OCI platform/)
    // Claims name 40-hex commits: a 64-hex one could never be claimed, so it is refused before any work.
    await expect(rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', expectedCommit: 'a'.repeat(64) })).rejects.toThrow(/not a full commit id \(40 hex\)/)
    const cli = await runCli(['rebuild', '--repo', failing.dir, '--ref', 'v1.0.0', '--recipe', 'neko', '--variant', 'nope'])
    expect(cli.code).toBe(3)
    expect(cli.stderr).toMatch(/no variant "nope"/)
  })

  describe('neko-style recipe: template prepare step and an app built FROM the base by digest', () => {
    let prepareImage: string
    const tag = `neko-rebuilder-test-prepare:${process.pid}`

    beforeAll(async () => {
      const ctx = await mkdtemp(join(work, 'prep-'))
      await copyFile(busyboxPath('amd64'), join(ctx, 'busybox'))
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT []\n')
      await run('docker', ['build', '-q', '-t', tag, ctx])
      const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{index .RepoDigests 0}}', tag])
      prepareImage = stdout.trim()
      expect(prepareImage).toMatch(/@sha256:[0-9a-f]{64}$/)
    })
    afterAll(async () => {
      await run('docker', ['rmi', '-f', tag]).catch(() => {})
    }, ENGINE_TEST_TIMEOUT)

    it('generates the Dockerfile in a pinned container, builds the base, then the app from it', async () => {
      const recipe = {
        name: 'nekoish',
        variants: [
          {
            name: 'base',
            platforms: ['linux/amd64'],
            image: 'registry.example/nekoish/base',
            prepare: [{ image: prepareImage, command: ['/bin/busybox', 'sed', 's/@@RUNTIME@@/runtime-from-template/', 'Dockerfile.tmpl'], stdout: 'Dockerfile' }],
            build: { context: '.', dockerfile: 'Dockerfile' }
          },
          {
            name: 'app',
            platforms: ['linux/amd64'],
            build: { context: 'apps/app', dockerfile: 'apps/app/Dockerfile' },
            from: { BASE_IMAGE: 'base' }
          }
        ]
      }
      const repo = await createFixtureRepo({
        files: {
          'neko-rebuilder.json': JSON.stringify(recipe),
          'Dockerfile.tmpl': scratchDockerfile(['RUN echo @@RUNTIME@@ > /runtime']),
          'apps/app/Dockerfile': 'ARG BASE_IMAGE=registry.example/nekoish/base:latest\nFROM $BASE_IMAGE\nRUN echo app > /app\n'
        },
        busybox: 'amd64',
        tag: 'v3.0.0'
      }, work)
      const base = await rebuilder.rebuild({ repository: repo.dir, ref: 'v3.0.0', variant: 'base', platform: 'linux/amd64', outDir: join(work, 'nekoish') })
      expect(base.claim.failure, JSON.stringify(base.claim.failure)).toBeUndefined()
      expect(base.claim.recipe.name).toBe('nekoish')
      expect(base.claim.result?.layerSteps?.at(-1)).toContain('runtime-from-template')

      const app = await rebuilder.rebuild({ repository: repo.dir, ref: 'v3.0.0', variant: 'app', platform: 'linux/amd64' })
      expect(app.claim.failure, JSON.stringify(app.claim.failure)).toBeUndefined()
      // The app's first layers are exactly the base's.
      expect(app.claim.result?.diffIds.slice(0, -1)).toEqual(base.claim.result?.diffIds)
      expect(app.claim.result?.layerSteps?.at(-1)).toContain('echo app > /app')

      // Prepare containers are gone.
      const { stdout } = await run('docker', ['ps', '-a', '-q', '--filter', `ancestor=${prepareImage}`])
      expect(stdout.trim()).toBe('')
      // And so are the workspaces.
      expect((await readdir(join(work, 'ws'))).filter(n => n.startsWith('rebuild-'))).toEqual([])
    }, ENGINE_TEST_TIMEOUT)

    it('a prepare step never writes through a committed symlink', async () => {
      const victim = join(work, 'victim.txt')
      await writeFile(victim, 'untouched\n')
      const recipe = { name: 'sym', variants: [{ name: 'base', platforms: ['linux/amd64'], prepare: [{ image: prepareImage, command: ['/bin/busybox', 'echo', 'FROM scratch'], stdout: 'gen/Dockerfile' }], build: { context: '.', dockerfile: 'gen/Dockerfile' } }] }
      const repo = await createFixtureRepo({ files: { 'neko-rebuilder.json': JSON.stringify(recipe), 'gen/Dockerfile': { symlink: victim } }, tag: 'v1' }, work)
      const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1', platform: 'linux/amd64' })
      // The link inside the checkout is replaced by the generated file; the file it pointed to is untouched.
      expect(out.claim.failure, JSON.stringify(out.claim.failure)).toBeUndefined()
      expect(await readFile(victim, 'utf8')).toBe('untouched\n')
      const outside = await createFixtureRepo({ files: { 'neko-rebuilder.json': JSON.stringify(recipe), gen: { symlink: work } }, tag: 'v1' }, work)
      const refused = await rebuilder.rebuild({ repository: outside.dir, ref: 'v1', platform: 'linux/amd64' })
      expect(refused.claim.failure?.class).toBe('source-error')
      expect(refused.claim.failure?.message).toMatch(/resolves outside the checkout/)
      await expect(stat(join(work, 'Dockerfile'))).rejects.toThrow()
    }, ENGINE_TEST_TIMEOUT)

    it('a failing prepare step is build-failed naming it', async () => {
      const recipe = join(work, 'prep-fail.json')
      await writeFile(recipe, JSON.stringify({ name: 'pf', variants: [{ name: 'base', platforms: ['linux/amd64'], prepare: [{ image: prepareImage, command: ['/bin/busybox', 'false'] }], build: { context: '.', dockerfile: 'Dockerfile' } }] }))
      const out = await rebuilder.rebuild({ repository: failing.dir, ref: 'v1.0.0', platform: 'linux/amd64', recipe })
      expect(out.claim.failure?.class).toBe('build-failed')
      expect(out.claim.failure?.step).toBe('prepare 1: /bin/busybox false')
    }, ENGINE_TEST_TIMEOUT)
  })
})
