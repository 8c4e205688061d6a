import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { TEST_RESULT_LIMITS, verifyTestResult, type TestResult } from '../../protocol/test-result.js'
import { checkedGossip, type CheckedGossip, type CheckedGossipComponents, type CheckedGossipLimits, type GossipCheck } from '../p2p/checked-gossip.js'
import { STORE_LIMITS } from '../store/limits.js'
import { testResultIdOf } from '../store/test-results.js'
import type { Store, StoredTestResult, TestResultFilter } from '../store/types.js'
import { getFromNode, jsonFromNode, NodeFetchError } from '../client/index.js'

/**
 * Smoke test results (in-toto Test Results, src/protocol/test-result.ts) this node signed or
 * received on their topic (docs/network.md, "Test results"): checked, kept by the store's
 * test result sub-store (src/node/store/test-results.ts), and shown beside a target's
 * verdict. Never a vote: the quorum does not read them.
 */
export type { StoredTestResult, TestResultFilter } from '../store/types.js'
export { testResultIdOf }

/** Per target: one per signer (a newer one replaces it), at most this many signers. */
export const MAX_RESULTS_PER_TARGET = STORE_LIMITS.maxTestResultsPerTarget

export interface TestResultGossipComponents extends CheckedGossipComponents {
  store: Store
}

/** Defaults: envelopes up to TEST_RESULT_LIMITS.envelopeBytes (16 KiB), 60 test results a minute per signer. */
export type TestResultGossipInit = CheckedGossipLimits

/** What the check of one test result made of it. */
export type TestResultCheck = GossipCheck<TestResult>

export type TestResultGossip = CheckedGossip<TestResult, StoredTestResult>

/** Stored test results matching `filter`, newest first. */
export async function listTestResults (store: Store, filter: TestResultFilter = {}, limit: number = STORE_LIMITS.maxTestResults): Promise<StoredTestResult[]> {
  return await store.testResults.list(filter, limit)
}

export function createTestResultGossip (components: TestResultGossipComponents, init: TestResultGossipInit = {}): TestResultGossip {
  const { store, log } = components
  return checkedGossip(components, {
    what: ['test result', 'test results'],
    maxBytes: init.maxBytes ?? TEST_RESULT_LIMITS.envelopeBytes,
    perSignerPerMinute: init.perSignerPerMinute ?? 60,
    verify: (envelopeJson, policy) => {
      const { keyId, testResult } = verifyTestResult(envelopeJson, { keys: policy.builderKeys, allowEmbeddedKeys: true })
      return { keyId, value: testResult }
    },
    async refuse (keyId, testResult, data) {
      const standing = await store.testResults.standing(testResultIdOf(data), testResult, keyId)
      if (standing.stored) return { verdict: 'ignore', keyId, reason: 'already stored' }
      if (standing.signerFinishedOn != null && standing.signerFinishedOn >= testResult.finishedOn) return { verdict: 'ignore', keyId, reason: 'a test result of this signer for the target as new or newer is stored' }
      if (standing.signerFinishedOn == null && standing.forTarget >= MAX_RESULTS_PER_TARGET) return { verdict: 'ignore', keyId, reason: `the target already has ${MAX_RESULTS_PER_TARGET} test results` }
      return undefined
    },
    async store (data, keyId, testResult) {
      const stored = await store.testResults.save(Buffer.from(data).toString('utf8'), testResult, keyId)
      log.info({ id: stored.id, keyId, target: targetKey(testResult.target), result: testResult.result, manifest: testResult.manifestDigest }, 'test result stored')
      return stored
    }
  })
}

/**
 * A release's test results from a node's `/api/v1/test-results`, each verified here against
 * the policy's builder keys: one signed by anyone else is dropped, and the node's word is
 * never taken for what a result says.
 */
export async function fetchTestResultsFromNode (nodeUrl: string, policy: TrustPolicy, repository: string, commit: string, opts: { maxBytes?: number, timeoutMs?: number } = {}): Promise<Array<{ keyId: string, testResult: TestResult }>> {
  const got = await getFromNode(nodeUrl, '/api/v1/test-results', {
    params: { repository, commit, limit: '500' },
    accept: 'application/json',
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxBytes: opts.maxBytes ?? 16 * 1024 * 1024,
    // A node from before test results has no such route: nothing to show.
    missingOk: true
  })
  if (got === undefined) return []
  const items = (jsonFromNode(got) as { items?: unknown }).items
  if (!Array.isArray(items)) throw new NodeFetchError(got.url, 'the answer has no items array')
  const out: Array<{ keyId: string, testResult: TestResult }> = []
  for (const item of items) {
    try {
      const v = verifyTestResult((item as { envelope?: unknown }).envelope, { keys: policy.builderKeys })
      if (v.testResult.target.repository === repository && v.testResult.target.commit === commit) out.push(v)
    } catch {
      // Unverifiable or untrusted: not shown.
    }
  }
  return out
}

/** This node's own newest results, as signed: what it serves a peer that meets it (statements exchange). */
export async function ownTestResults (store: Store, keyId: string, max: number): Promise<Uint8Array[]> {
  return (await listTestResults(store, { keyId }, max)).map(r => Buffer.from(r.envelopeJson, 'utf8'))
}
