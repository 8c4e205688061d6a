import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRebuilder, parseRecipe, type Rebuilder, type RebuildOutcome, type Recipe } from '../../src/node/rebuilder/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signTestResult, verifyTestResult, TEST_RESULT_PREDICATE, type TestResult } from '../../src/protocol/test-result.js'
import { engineAvailable, gpuEngineAvailable } from '../helpers/engine.js'
import { createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'

const available = engineAvailable('build: smoke tests in the rebuilt image')
const gpu = available && gpuEngineAvailable('build: a GPU smoke test')
const ENGINE_TEST_TIMEOUT = 300_000
const PLATFORM = 'linux/amd64'

/** A Test Result of a rebuild's smoke test, as the scheduler signs it. */
function testResultOf (out: RebuildOutcome): TestResult {
  const smoke = out.smoke
  if (smoke == null || out.claim.result == null) throw new Error('no smoke test outcome')
  return { target: out.claim.target, manifestDigest: out.claim.result.manifestDigest, recipe: out.claim.recipe, environment: out.claim.environment, ...smoke }
}

describe.skipIf(!available)('smoke tests in the rebuilt image, through the real engine', () => {
  let work: string
  let repo: FixtureRepo
  let rebuilder: Rebuilder
  let recipe: Recipe
  const identity = generateIdentity()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'neko-smoke-test-'))
    rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    repo = await createFixtureRepo({ files: { Dockerfile: scratchDockerfile(['RUN echo ready > /ready']) }, busybox: 'amd64', tag: 'v1.0.0' }, work)
    const build = { context: '.', dockerfile: 'Dockerfile' }
    recipe = parseRecipe({
      name: 'smoky',
      variants: [
        { name: 'passes', platforms: [PLATFORM], build, smoke: { command: ['/bin/busybox', 'grep', '-q', 'ready', '/ready'] } },
        { name: 'fails', platforms: [PLATFORM], build, smoke: { command: ['/bin/busybox', 'test', '-e', '/missing'] } },
        { name: 'hangs', platforms: [PLATFORM], build, smoke: { command: ['/bin/busybox', 'sleep', '600'], timeoutSeconds: 2 } },
        { name: 'gpu', platforms: [PLATFORM], build, requires: { nvidia: true }, smoke: { command: ['/bin/busybox', 'ls', '/dev'], gpu: true } }
      ]
    })
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  const rebuild = async (variant: string): Promise<RebuildOutcome> => {
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1.0.0', recipe, variant, platform: PLATFORM })
    expect(out.claim.failure, JSON.stringify(out.claim.failure)).toBeUndefined()
    return out
  }

  it('a passing and a failing CPU smoke test each sign a Test Result for the rebuilt image', async () => {
    const passes = await rebuild('passes')
    expect(passes.smoke).toMatchObject({ result: 'PASSED', exitCode: 0, gpu: false, command: ['/bin/busybox', 'grep', '-q', 'ready', '/ready'] })
    const fails = await rebuild('fails')
    expect(fails.smoke).toMatchObject({ result: 'FAILED', exitCode: 1, gpu: false })
    // All variants build the same Dockerfile: the same image, tested two ways.
    expect(fails.claim.result?.manifestDigest).toBe(passes.claim.result?.manifestDigest)

    for (const [out, result] of [[passes, 'PASSED'], [fails, 'FAILED']] as const) {
      const envelope = signTestResult(testResultOf(out), identity)
      const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicateType: string, subject: unknown, predicate: { result: string, passedTests: string[], failedTests: string[] } }
      expect(statement.predicateType).toBe(TEST_RESULT_PREDICATE)
      expect(statement.subject).toEqual([{ name: `${repo.dir}#${out.claim.target.variant}@${PLATFORM}`, digest: { sha256: out.claim.result?.manifestDigest.slice(7) } }])
      expect(statement.predicate.result).toBe(result)
      const back = verifyTestResult(JSON.stringify(envelope), { allowEmbeddedKeys: true })
      expect(back.keyId).toBe(identity.keyId)
      expect(back.testResult).toEqual(testResultOf(out))
    }
  }, ENGINE_TEST_TIMEOUT)

  it('a smoke test that does not exit in its time fails without an exit status; no container or image is left', async () => {
    const hangs = await rebuild('hangs')
    expect(hangs.smoke?.result).toBe('FAILED')
    expect(hangs.smoke?.exitCode).toBeUndefined()
    const { execFileSync } = await import('node:child_process')
    const left = execFileSync('docker', ['ps', '-a', '-q', '--filter', `ancestor=${hangs.claim.result?.configDigest ?? ''}`], { encoding: 'utf8' })
    expect(left.trim()).toBe('')
  }, ENGINE_TEST_TIMEOUT)

  it.skipIf(gpu)('a GPU smoke test is not run on an engine without an NVIDIA GPU: the image is still built, no test result', async () => {
    const out = await rebuild('gpu')
    expect(out.claim.result?.manifestDigest).toMatch(/^sha256:/)
    expect(out.smoke).toBeUndefined()
  }, ENGINE_TEST_TIMEOUT)

  it.skipIf(!gpu)('a GPU smoke test runs with the GPU handed to the container', async () => {
    const out = await rebuild('gpu')
    expect(out.smoke).toMatchObject({ result: 'PASSED', gpu: true, exitCode: 0 })
  }, ENGINE_TEST_TIMEOUT)
})
