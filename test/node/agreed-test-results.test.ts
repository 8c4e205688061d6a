import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/node/logger.js'
import type { Store } from '../../src/node/store/types.js'
import { createAgreedTestResults } from '../../src/node/test-results/agreed.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { signClaim } from '../../src/protocol/messages.js'
import { verifyTestResult, type TestResult } from '../../src/protocol/test-result.js'
import { claim, COMMIT_3, COMMIT_4, imageResult, makeKeys, put, seedReleases, target, tempStore, testPolicy, type Keys } from '../http/fixtures.js'

function outcome (commit: string, tag: string, manifestDigest: string, result: 'PASSED' | 'FAILED' = 'PASSED'): TestResult {
  const c = claim(target(commit, 'base', 'linux/amd64', tag), { result: imageResult('x') })
  return { target: c.target, manifestDigest, recipe: c.recipe, environment: c.environment, result, command: ['/bin/busybox', 'true'], gpu: false, exitCode: result === 'PASSED' ? 0 : 1, startedOn: '2026-01-01T00:00:00.000Z', finishedOn: '2026-01-01T00:00:01.000Z' }
}

describe('a node\'s smoke test results wait for the quorum', () => {
  let keys: Keys
  let store: Store
  let cleanup: () => Promise<void>
  let v4: string
  const published: Array<{ envelopeJson: string, testResult: TestResult }> = []

  beforeAll(async () => {
    keys = makeKeys()
    const t = await tempStore()
    store = t.store
    cleanup = t.cleanup
    v4 = (await seedReleases(store, keys)).v4.amd64.manifestDigest
  })
  afterAll(async () => { await cleanup() })

  it('signs one for the agreed image, holds one for an undecided target until it is agreed, drops one for another image', async () => {
    const signer = keys.builders[0] as SigningIdentity
    const agreed = createAgreedTestResults({ store, policy: () => testPolicy(keys), identity: signer, log: createLogger({ level: 'silent' }).forComponent('t'), publish: async (envelopeJson, testResult) => { published.push({ envelopeJson, testResult }) } })

    // v4 base amd64 is reproducible already: out at once, signed, its subject the agreed digest.
    await agreed.hold(outcome(COMMIT_4, 'v4', v4))
    expect(published).toHaveLength(1)
    const first = verifyTestResult(published[0]!.envelopeJson, { keys: testPolicy(keys).builderKeys })
    expect(first.keyId).toBe(signer.keyId)
    expect(first.testResult.manifestDigest).toBe(v4)

    // v3 base amd64 has one claim (pending): held.
    const v3 = imageResult('v3')
    await agreed.hold(outcome(COMMIT_3, 'v3', v3.manifestDigest, 'FAILED'))
    await agreed.hold(outcome(COMMIT_3, 'v3', imageResult('not agreed').manifestDigest))
    await agreed.claimStored(target(COMMIT_3, 'base', 'linux/amd64'))
    expect(published).toHaveLength(1)
    // A second trusted builder agrees: the FAILED result for the agreed image goes out, the other is dropped.
    await put(store, signClaim(claim(target(COMMIT_3, 'base', 'linux/amd64', 'v3'), { result: v3 }), keys.builders[1]!))
    await agreed.claimStored(target(COMMIT_3, 'base', 'linux/amd64'))
    expect(published.map(p => [p.testResult.manifestDigest, p.testResult.result])).toEqual([[v4, 'PASSED'], [v3.manifestDigest, 'FAILED']])
    await agreed.claimStored(target(COMMIT_3, 'base', 'linux/amd64'))
    expect(published).toHaveLength(2)
    expect(await store.testResults.waiting.targets()).toEqual(new Set())
  })
})
