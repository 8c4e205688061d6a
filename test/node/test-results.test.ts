import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/node/logger.js'
import { createFeedServer } from '../../src/node/http/server.js'
import { createStore } from '../../src/node/store/level-store.js'
import type { Store } from '../../src/node/store/types.js'
import { createTestResultGossip, fetchTestResultsFromNode, listTestResults, MAX_RESULTS_PER_TARGET } from '../../src/node/test-results/index.js'
import { signTestResult, TEST_RESULT_LIMITS, type TestResult } from '../../src/protocol/test-result.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { runCli, type CliResult } from '../rebuilder/cli-runner.js'
import { COMMIT_4, claim, digestOf, makeKeys, policyJson, REPO, seedReleases, target, testPolicy, type Keys } from '../http/fixtures.js'

const log = createLogger({ level: 'silent' }).forComponent('test-results')

function testResult (manifestDigest: string, result: 'PASSED' | 'FAILED', finishedOn = '2026-01-01T00:01:00.000Z', platform = 'linux/amd64'): TestResult {
  const c = claim(target(COMMIT_4, 'base', platform, 'v4'), { result: { indexDigest: digestOf('i'), manifestDigest, configDigest: digestOf('c'), diffIds: [] } })
  return {
    target: c.target,
    manifestDigest,
    recipe: c.recipe,
    environment: c.environment,
    result,
    command: ['/bin/busybox', 'true'],
    gpu: false,
    exitCode: result === 'PASSED' ? 0 : 1,
    startedOn: new Date(Date.parse(finishedOn) - 1000).toISOString(),
    finishedOn
  }
}

const bytes = (t: TestResult, by: SigningIdentity): Uint8Array => Buffer.from(JSON.stringify(signTestResult(t, by)), 'utf8')

async function cli (args: string[]): Promise<CliResult> {
  return await runCli(['status', ...args])
}

describe('smoke test results: gossip, store, status', () => {
  let keys: Keys
  let dir: string
  let store: Store
  let agreed: string

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-test-results-'))
    store = await createStore({}, { path: join(dir, 'data', 'store') })
    agreed = (await seedReleases(store, keys)).v4.amd64.manifestDigest
    await writeFile(join(dir, 'policy.json'), JSON.stringify(policyJson(keys)))
  })
  afterAll(async () => {
    await store.close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('accepts a trusted builder\'s result, refuses forged and oversized ones, ignores strangers and repeats, keeps the newest per builder', async () => {
    const gossip = createTestResultGossip({ store, policy: () => testPolicy(keys), log }, { perSignerPerMinute: 600 })
    const [b1, b2] = keys.builders as [SigningIdentity, SigningIdentity]
    const first = bytes(testResult(agreed, 'PASSED'), b1)
    const ok = await gossip.check(first)
    expect(ok).toMatchObject({ verdict: 'accept', keyId: b1.keyId })
    expect(await gossip.receive(first, ok)).toMatchObject({ keyId: b1.keyId })
    expect(await gossip.check(first)).toMatchObject({ verdict: 'ignore', reason: 'already stored' })

    expect(await gossip.check(bytes(testResult(agreed, 'PASSED'), keys.stranger))).toMatchObject({ verdict: 'ignore' })
    // A signature over other bytes.
    const env = signTestResult(testResult(agreed, 'PASSED'), b2)
    const forged = { ...env, payload: Buffer.from(Buffer.from(env.payload, 'base64').toString('utf8').replace('PASSED', 'FAILED')).toString('base64') }
    expect((await gossip.check(Buffer.from(JSON.stringify(forged)))).verdict).toBe('reject')
    expect(await gossip.check(new Uint8Array(TEST_RESULT_LIMITS.envelopeBytes + 1))).toMatchObject({ verdict: 'reject', reason: expect.stringContaining('exceeds') as unknown })

    // An older result of the same builder is not taken; a newer one replaces the stored one.
    expect((await gossip.check(bytes(testResult(agreed, 'FAILED', '2025-12-31T00:00:00.000Z'), b1))).verdict).toBe('ignore')
    await gossip.receive(bytes(testResult(agreed, 'FAILED', '2026-01-02T00:00:00.000Z'), b1))
    const stored = await listTestResults(store, { repository: REPO, commit: COMMIT_4 })
    expect(stored.map(s => [s.keyId, s.testResult.result])).toEqual([[b1.keyId, 'FAILED']])
    expect(MAX_RESULTS_PER_TARGET).toBeGreaterThan(1)
    // Back as it was for the status test below.
    await gossip.receive(bytes(testResult(agreed, 'PASSED', '2026-01-03T00:00:00.000Z'), b1))
    await gossip.receive(bytes(testResult(digestOf('another image'), 'FAILED', '2026-01-03T00:00:00.000Z'), b2))
  })

  it('a signer over its rate is ignored, not rejected', async () => {
    const gossip = createTestResultGossip({ store, policy: () => testPolicy(keys), log }, { perSignerPerMinute: 4 })
    const b3 = keys.builders[2] as SigningIdentity
    const verdicts: string[] = []
    for (let i = 0; i < 3; i++) verdicts.push((await gossip.check(bytes(testResult(agreed, 'PASSED', `2026-02-0${i + 1}T00:00:00.000Z`, `linux/arm${i}`), b3))).verdict)
    expect(verdicts).toEqual(['accept', 'ignore', 'ignore'])
  })

  it('status shows them beside the verdicts (text and --json), from the store and from a node, and its exit code ignores them', async () => {
    await store.close()
    const policy = join(dir, 'policy.json')
    const text = await cli(['v4', '--data-dir', join(dir, 'data'), '--policy', policy])
    expect(text.code).toBe(0)
    expect(text.stdout).toContain('smoke tests (in-toto Test Results, not votes):')
    expect(text.stdout).toContain('base linux/amd64: PASSED by operator-1 on the agreed image: /bin/busybox true')
    expect(text.stdout).toMatch(/base linux\/amd64: FAILED \(exit 1\) by operator-2 on another image \(sha256:/)
    const json = await cli(['v4', '--data-dir', join(dir, 'data'), '--policy', policy, '--json'])
    expect(json.code).toBe(0)
    const body = JSON.parse(json.stdout) as { outcome: string, testResults: Array<{ keyId: string, result: string, agreedImage: boolean }> }
    expect(body.outcome).toBe('ok')
    expect(body.testResults.map(t => [t.keyId, t.result, t.agreedImage])).toEqual([[keys.builders[0]!.keyId, 'PASSED', true], [keys.builders[1]!.keyId, 'FAILED', false]])

    store = await createStore({}, { path: join(dir, 'data', 'store') })
    const server = createFeedServer({ store, policy: testPolicy(keys) }, { host: '127.0.0.1', port: 0 })
    const url = (await server.start()).url
    try {
      const fetched = await fetchTestResultsFromNode(url, testPolicy(keys), REPO, COMMIT_4)
      expect(fetched.map(f => f.testResult.result).sort()).toEqual(['FAILED', 'PASSED'])
      const remote = await cli(['v4', '--node', url, '--policy', policy])
      expect(remote.code).toBe(0)
      expect(remote.stdout).toContain('base linux/amd64: PASSED by operator-1 on the agreed image')
      const bad = await fetch(`${url}/api/v1/test-results?commit=xyz`)
      expect(bad.status).toBe(400)
    } finally {
      await server.stop()
    }
  }, 120_000)
})
