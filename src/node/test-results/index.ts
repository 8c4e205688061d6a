import { createHash } from 'node:crypto'
import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { TEST_RESULT_LIMITS, verifyTestResult, type TestResult } from '../../protocol/test-result.js'
import type { Logger } from '../logger.js'
import { createRateLimiter } from '../rate-limit.js'
import type { Store } from '../store/types.js'
import { getFromNode, jsonFromNode, NodeFetchError } from '../client/index.js'

/**
 * Smoke test results (in-toto Test Results, src/protocol/test-result.ts) this node signed or
 * received on their topic (docs/network.md, "Test results"): checked, stored in the store's
 * state space (an index under `test-results`, each envelope under `test-result/<id>`), and
 * shown beside a target's verdict. Never a vote: the quorum does not read them.
 */
export interface StoredTestResult {
  /** Hex sha256 of the envelope JSON. */
  id: string
  keyId: string
  envelopeJson: string
  testResult: TestResult
}

interface IndexEntry {
  id: string
  /** `targetKey` */
  key: string
  repository: string
  commit: string
  keyId: string
  finishedOn: string
}

const INDEX = 'test-results'
/** Test results kept in all; beyond it the oldest go. */
const MAX_RESULTS = 2000
/** Per target: one per signer (a newer one replaces it), at most this many signers. */
export const MAX_RESULTS_PER_TARGET = 16

export interface TestResultGossipComponents {
  store: Store
  policy: () => TrustPolicy
  log: Logger
}

export interface TestResultGossipInit {
  /** Largest envelope accepted. Default TEST_RESULT_LIMITS.envelopeBytes (16 KiB). */
  maxBytes?: number
  /** Test results per minute accepted from one signer, whoever relays them; a quarter of it at once. Default 60. */
  perSignerPerMinute?: number
}

export interface TestResultCheck {
  verdict: 'accept' | 'reject' | 'ignore'
  reason?: string
  keyId?: string
  testResult?: TestResult
}

export interface TestResultGossip {
  /** Gossip check of one envelope. Never throws. */
  check: (data: Uint8Array) => Promise<TestResultCheck>
  /** Stores a test result, with what `check` found when the p2p layer hands that over (else it checks again). */
  receive: (data: Uint8Array, checked?: TestResultCheck) => Promise<StoredTestResult | undefined>
}

export interface TestResultFilter {
  repository?: string
  commit?: string
  /** `targetKey` */
  key?: string
}

/** Stored test results matching `filter`, newest first. */
export async function listTestResults (store: Store, filter: TestResultFilter = {}, limit = MAX_RESULTS): Promise<StoredTestResult[]> {
  const out: StoredTestResult[] = []
  const entries = ((await store.getState<IndexEntry[]>(INDEX)) ?? []).filter(e =>
    (filter.repository === undefined || e.repository === filter.repository) &&
    (filter.commit === undefined || e.commit === filter.commit) &&
    (filter.key === undefined || e.key === filter.key))
  for (const e of entries.reverse()) {
    if (out.length >= limit) break
    const v = await store.getState<Omit<StoredTestResult, 'id'> | null>(`test-result/${e.id}`)
    if (v != null) out.push({ id: e.id, ...v })
  }
  return out
}

export function testResultIdOf (envelopeJson: string | Uint8Array): string {
  return createHash('sha256').update(envelopeJson).digest('hex')
}

export function createTestResultGossip (components: TestResultGossipComponents, init: TestResultGossipInit = {}): TestResultGossip {
  const { store, log } = components
  const maxBytes = init.maxBytes ?? TEST_RESULT_LIMITS.envelopeBytes
  const perMinute = init.perSignerPerMinute ?? 60
  const limiter = createRateLimiter({ perMinute, burst: Math.max(1, Math.ceil(perMinute / 4)), maxKeys: 4096 })
  // The index is read, changed and written back: one save at a time.
  let saving: Promise<unknown> = Promise.resolve()

  const index = async (): Promise<IndexEntry[]> => (await store.getState<IndexEntry[]>(INDEX)) ?? []

  async function check (data: Uint8Array): Promise<TestResultCheck> {
    if (data.byteLength > maxBytes) return { verdict: 'reject', reason: `test result of ${data.byteLength} bytes exceeds ${maxBytes}` }
    const policy = components.policy()
    let keyId: string
    let testResult: TestResult
    try {
      ({ keyId, testResult } = verifyTestResult(Buffer.from(data).toString('utf8'), { keys: policy.builderKeys, allowEmbeddedKeys: true }))
    } catch (err) {
      return { verdict: 'reject', reason: `${(err as Error).name}: ${(err as Error).message}` }
    }
    // A stranger's result is not wrong, only not ours to keep: dropped, not relayed, not penalised.
    if (!policy.builderKeys.has(keyId)) return { verdict: 'ignore', keyId, reason: `test result signed by ${keyId}, not a builder of the policy` }
    try {
      const entries = await index()
      if (entries.some(e => e.id === testResultIdOf(data))) return { verdict: 'ignore', keyId, reason: 'already stored' }
      const key = targetKey(testResult.target)
      const own = entries.find(e => e.key === key && e.keyId === keyId)
      if (own != null && own.finishedOn >= testResult.finishedOn) return { verdict: 'ignore', keyId, reason: 'a test result of this signer for the target as new or newer is stored' }
      if (own == null && entries.filter(e => e.key === key).length >= MAX_RESULTS_PER_TARGET) return { verdict: 'ignore', keyId, reason: `the target already has ${MAX_RESULTS_PER_TARGET} test results` }
    } catch (err) {
      log.warn({ err }, 'could not read the store to check a test result')
      return { verdict: 'ignore', reason: 'store unavailable' }
    }
    // Counted once the result is new here: a relayed copy costs its signer nothing.
    if (!limiter.take(keyId)) return { verdict: 'ignore', keyId, reason: `signer ${keyId} over its rate of ${perMinute} test results a minute` }
    return { verdict: 'accept', keyId, testResult }
  }

  async function save (envelopeJson: string, testResult: TestResult, keyId: string): Promise<StoredTestResult> {
    const id = testResultIdOf(envelopeJson)
    const key = targetKey(testResult.target)
    const entries = await index()
    // One per signer and target: the newer replaces the older.
    const replaced = entries.filter(e => e.key === key && e.keyId === keyId)
    const kept = entries.filter(e => !replaced.includes(e))
    kept.push({ id, key, repository: testResult.target.repository, commit: testResult.target.commit, keyId, finishedOn: testResult.finishedOn })
    const dropped = [...replaced, ...kept.splice(0, Math.max(0, kept.length - MAX_RESULTS))]
    await store.setState(`test-result/${id}`, { keyId, envelopeJson, testResult })
    for (const d of dropped) await store.setState(`test-result/${d.id}`, null)
    await store.setState(INDEX, kept)
    return { id, keyId, envelopeJson, testResult }
  }

  return {
    async check (data) {
      try {
        return await check(data)
      } catch (err) {
        log.warn({ err }, 'checking a test result failed unexpectedly; rejecting')
        return { verdict: 'reject', reason: 'validator error' }
      }
    },
    async receive (data, checked) {
      const r = checked ?? await check(data)
      if (r.verdict !== 'accept' || r.keyId === undefined || r.testResult === undefined) return undefined
      const { keyId, testResult } = r
      const run = saving.then(async () => await save(Buffer.from(data).toString('utf8'), testResult, keyId))
      saving = run.catch(() => {})
      const stored = await run
      log.info({ id: stored.id, keyId, target: targetKey(testResult.target), result: testResult.result, manifest: testResult.manifestDigest }, 'test result stored')
      return stored
    }
  }
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
  return (await listTestResults(store)).filter(r => r.keyId === keyId).slice(0, max).map(r => Buffer.from(r.envelopeJson, 'utf8'))
}
