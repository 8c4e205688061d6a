import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Daemon } from '../../src/node/daemon/index.js'
import type { P2PNode } from '../../src/node/p2p/index.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { listTestResults } from '../../src/node/test-results/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signTestResult, verifyTestResult, type TestResult } from '../../src/protocol/test-result.js'
import { claim, COMMIT_1, imageResult, target } from '../http/fixtures.js'
import { policyFor, startDaemon, startRawPeer, waitFor } from './helpers.js'

function testResultBy (result: 'PASSED' | 'FAILED', command: string[] = ['/bin/busybox', 'true']): TestResult {
  const c = claim(target(COMMIT_1, 'default', 'linux/amd64', 'v1.0.0'), { result: imageResult('one') })
  return { target: c.target, manifestDigest: c.result!.manifestDigest, recipe: c.recipe, environment: c.environment, result, command, gpu: false, exitCode: result === 'PASSED' ? 0 : 1, startedOn: '2026-01-01T00:00:00.000Z', finishedOn: new Date().toISOString() }
}

describe('test results on their own gossip topic', () => {
  let root: string
  let observer: Daemon
  let raw: P2PNode
  const b1 = generateIdentity()
  const stranger = generateIdentity()
  const policy = policyFor([b1], [generateIdentity()])
  const send = async (t: TestResult, by: SigningIdentity): Promise<string> => {
    const json = JSON.stringify(signTestResult(t, by))
    await raw.publish(TOPICS.testResults, Buffer.from(json))
    return json
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-test-result-gossip-'))
    observer = await startDaemon({ dir: join(root, 'observer'), identity: generateIdentity(), policy, http: true })
    raw = await startRawPeer()
    await raw.dial(observer.multiaddrs()[0]!)
    await waitFor('the observer subscribed to test results', () => (raw.stats().mesh[TOPICS.testResults] ?? 0) >= 1, 20_000)
  })
  afterAll(async () => {
    await raw?.stop().catch(() => {})
    await observer?.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('an observer stores a builder\'s test result and serves it; forged, oversized and strangers\' ones change nothing', async () => {
    const good = await send(testResultBy('PASSED'), b1)
    await waitFor('the test result stored', async () => (await listTestResults(observer.store)).length === 1)

    const before = observer.stats().gossip
    await send(testResultBy('FAILED'), stranger)
    await waitFor('the stranger\'s result ignored', () => observer.stats().gossip.ignored > before.ignored)
    expect(observer.stats().gossip.rejected).toBe(before.rejected)

    const env = signTestResult(testResultBy('PASSED'), b1)
    const forged = { ...env, payload: Buffer.from(Buffer.from(env.payload, 'base64').toString().replace('"PASSED"', '"FAILED"')).toString('base64') }
    await raw.publish(TOPICS.testResults, Buffer.from(JSON.stringify(forged)))
    await waitFor('the forged result refused', () => observer.stats().gossip.rejected === before.rejected + 1)
    await send(testResultBy('PASSED', Array.from({ length: 30 }, () => 'x'.repeat(1000))), b1)
    await waitFor('the oversized result refused', () => observer.stats().gossip.rejected === before.rejected + 2)
    await waitFor('the sender penalised', () => observer.p2p.score(raw.peerId) < 0)

    const stored = await listTestResults(observer.store)
    expect(stored.map(s => s.envelopeJson)).toEqual([good])
    const api = await (await fetch(`${observer.httpUrl()!}/api/v1/test-results?commit=${COMMIT_1}`)).json() as { items: Array<{ envelope: unknown }> }
    expect(api.items).toHaveLength(1)
    expect(verifyTestResult(api.items[0]!.envelope, { keys: policy.builderKeys }).testResult.result).toBe('PASSED')
  }, 60_000)
})
