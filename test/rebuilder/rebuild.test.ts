import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readOciArchive } from '../../src/node/oci/index.js'
import { diffOciArchives } from '../../src/node/compare/index.js'
import { createRebuilder, type Rebuilder } from '../../src/node/rebuilder/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { decodeMessage } from '../../src/protocol/messages.js'
import { writeIdentity } from '../../src/node/identity-files.js'
import { engineAvailable } from '../helpers/engine.js'
import { createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { runCli } from './cli-runner.js'

const available = engineAvailable('build: rebuild')
/** Builds and CLI processes share two cores with the rest of the suite: allow for a loaded machine. */
const ENGINE_TEST_TIMEOUT = 180_000

describe.skipIf(!available)('rebuild through the real engine', () => {
  let work: string
  let rebuilder: Rebuilder
  let stable: FixtureRepo
  let dated: FixtureRepo

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rebuild-test-'))
    rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    stable = await createFixtureRepo({
      files: {
        Dockerfile: scratchDockerfile(['COPY hello.txt /srv/hello.txt', 'RUN mkdir -p /var && echo "$SOURCE_DATE_EPOCH" > /var/epoch']),
        'hello.txt': 'hello\n'
      },
      busybox: 'amd64',
      tag: 'v1.0.0'
    }, work)
    dated = await createFixtureRepo({
      files: { Dockerfile: scratchDockerfile(['COPY hello.txt /hello.txt', 'RUN date > /built']), 'hello.txt': 'hi\n' },
      busybox: 'amd64',
      tag: 'v2.0.0'
    }, work)
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('gives the same digests in two independent --no-cache rebuilds, and diff says identical', async () => {
    const a = await rebuilder.rebuild({ repository: stable.dir, ref: 'v1.0.0', platform: 'linux/amd64', outDir: join(work, 'stable-a') })
    const b = await rebuilder.rebuild({ repository: stable.dir, ref: 'v1.0.0', platform: 'linux/amd64', outDir: join(work, 'stable-b') })
    expect(a.claim.failure).toBeUndefined()
    expect(a.claim.target).toEqual({ repository: stable.dir, commit: stable.commits[0]!.commit, variant: 'default', platform: 'linux/amd64', tag: 'v1.0.0' })
    expect(a.claim.sourceDateEpoch).toBe(stable.commits[0]!.commitTime)
    expect(a.claim.environment.emulated).toBe(false)
    expect(a.claim.environment.engine.version).not.toBe('unknown')
    expect(a.claim.result?.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(b.claim.result?.manifestDigest).toBe(a.claim.result?.manifestDigest)
    expect(b.claim.result?.indexDigest).toBe(a.claim.result?.indexDigest)
    expect(a.claim.result?.diffIds).toHaveLength(4)
    expect(a.claim.result?.layerSteps?.[3]).toContain('/var/epoch')

    // The archive reader agrees with itself on the kept tarball, and diff reports no difference.
    const info = await readOciArchive(a.ociPath!)
    expect(info.images[0]!.platform).toBe('linux/amd64')
    expect(info.images[0]!.manifestDigest).toBe(a.claim.result?.manifestDigest)
    const d = await diffOciArchives(a.ociPath!, b.ociPath!)
    expect(d.identical).toBe(true)
    expect(d.layers).toEqual([])
    expect((await stat(a.logPath!)).size).toBeGreaterThan(0)
  }, ENGINE_TEST_TIMEOUT)

  it('finds a RUN date build unreproducible and diff names the layer, the step and /built (CLI)', async () => {
    const outA = join(work, 'dated-a')
    const outB = join(work, 'dated-b')
    const a = await runCli(['rebuild', '--repo', dated.dir, '--ref', 'v2.0.0', '--out', outA, '--json', '--work-dir', join(work, 'ws')])
    expect(a.code, a.stderr).toBe(0)
    await sleep(1100)
    const b = await rebuilder.rebuild({ repository: dated.dir, ref: 'v2.0.0', platform: 'linux/amd64', outDir: outB })
    const outcomeA = JSON.parse(a.stdout) as { claim: { result: { manifestDigest: string, diffIds: string[] } }, ociPath: string }
    expect(b.claim.result?.manifestDigest).not.toBe(outcomeA.claim.result.manifestDigest)
    // Only the last layer differs: the COPY layers are equal.
    expect(b.claim.result?.diffIds.slice(0, 3)).toEqual(outcomeA.claim.result.diffIds.slice(0, 3))

    const d = await diffOciArchives(outcomeA.ociPath, b.ociPath!)
    expect(d.identical).toBe(false)
    expect(d.layers).toHaveLength(1)
    const layer = d.layers[0]!
    expect(layer.index).toBe(3)
    expect(layer.step).toContain('date > /built')
    expect(layer.changes.map(c => c.path)).toEqual(['built'])
    expect(layer.changes[0]!.kinds).toContain('content')
    expect(layer.verdict).toBe('content')
    expect(d.verdict).toBe('content')
    // busybox `date` output is recognised in the text diff of the file.
    expect(layer.changes[0]!.cause?.id).toBe('embedded-timestamp')
    expect(layer.changes[0]!.diff).toMatch(/^-\w{3} \w{3} .*\n\+\w{3} \w{3} /m)
    expect(d.causes.map(g => [g.cause.id, g.count])).toEqual([['embedded-timestamp', 1]])

    const cli = await runCli(['diff', outcomeA.ociPath, b.ociPath!])
    expect(cli.code).toBe(1)
    expect(cli.stdout).toContain('date > /built')
    expect(cli.stdout).toMatch(/built: content.*\[embedded-timestamp\]/)
    expect(cli.stdout).toContain('fix: derive the date from SOURCE_DATE_EPOCH')
    const same = await runCli(['diff', '--json', outcomeA.ociPath, outcomeA.ociPath])
    expect(same.code).toBe(0)
    expect((JSON.parse(same.stdout) as { identical: boolean }).identical).toBe(true)
  }, ENGINE_TEST_TIMEOUT)

  it('builds linux/arm64 under emulation', async () => {
    const repo = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['RUN echo arm > /arch']) }, busybox: 'arm64', tag: 'v1' }, work)
    const caps = await rebuilder.capabilities()
    const arm = caps.platforms.find(p => p.platform === 'linux/arm64')
    expect(arm, 'the builder lists linux/arm64 (binfmt)').toBeDefined()
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1', platform: 'linux/arm64', outDir: join(work, 'arm') })
    expect(out.claim.failure).toBeUndefined()
    expect(out.claim.environment.emulated).toBe(arm!.emulated)
    const info = await readOciArchive(out.ociPath!)
    expect(info.images[0]!.platform).toBe('linux/arm64')
    expect(info.images[0]!.config.architecture).toBe('arm64')
  }, ENGINE_TEST_TIMEOUT)

  it('signs the claim with --key and writes it as a DSSE file; --repo . is named by its absolute path', async () => {
    const keyDir = join(work, 'key')
    const identity = generateIdentity()
    await writeIdentity(keyDir, identity)
    const out = join(work, 'signed')
    // Run from inside the repository, as a maintainer would: the claim names no path only this directory knows.
    const res = await runCli(['rebuild', '--repo', '.', '--ref', 'v1.0.0', '--key', keyDir, '--out', out, '--work-dir', join(work, 'ws')], { cwd: stable.dir })
    expect(res.code, res.stderr).toBe(0)
    const claimFile = /claim\s+(\S+)/.exec(res.stdout)?.[1]
    expect(claimFile).toBeDefined()
    const envelope = JSON.parse(await import('node:fs/promises').then(async fs => await fs.readFile(claimFile!, 'utf8'))) as unknown
    const decoded = decodeMessage(envelope, { keys: new Map([[identity.keyId, identity.publicKey]]) })
    expect(decoded.kind).toBe('claim')
    if (decoded.kind === 'claim') {
      expect(decoded.claim.target.commit).toBe(stable.commits[0]!.commit)
      expect(decoded.claim.target.repository).toBe(stable.dir)
      expect(decoded.claim.result?.manifestDigest).toMatch(/^sha256:/)
    }
    expect(res.stdout).toMatch(/manifest\s+sha256:[0-9a-f]{64}/)
  }, ENGINE_TEST_TIMEOUT)
})
