import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createStore, STORE_LIMITS, type Store } from '../../src/node/store/index.js'
import { testResultIdOf } from '../../src/node/test-results/index.js'
import { targetKey } from '../../src/protocol/target.js'
import type { TestResult } from '../../src/protocol/test-result.js'

const REPO = 'https://example.test/repo.git'
const COMMIT = 'c'.repeat(40)
const OTHER_COMMIT = 'd'.repeat(40)
const IMAGE = `sha256:${'a'.repeat(64)}`
const OTHER_IMAGE = `sha256:${'b'.repeat(64)}`

function testResult (opts: { variant?: string, commit?: string, image?: string, finishedOn?: string, result?: 'PASSED' | 'FAILED' } = {}): TestResult {
  return {
    target: { repository: REPO, commit: opts.commit ?? COMMIT, variant: opts.variant ?? 'base', platform: 'linux/amd64', tag: 'v1.0.0' },
    manifestDigest: opts.image ?? IMAGE,
    recipe: { name: 'docker-buildx', digest: `sha256:${'e'.repeat(64)}` },
    // The store keeps what it is given; where it ran is not its concern.
    environment: {} as TestResult['environment'],
    result: opts.result ?? 'PASSED',
    command: ['/bin/true'],
    gpu: false,
    exitCode: 0,
    startedOn: '2026-12-01T09:59:00.000Z',
    finishedOn: opts.finishedOn ?? '2026-12-01T10:00:00.000Z'
  }
}

/** The envelope text stands in for a signed one: the store keeps it as given and names it by its hash. */
const envelopeOf = (t: TestResult, keyId: string): string => JSON.stringify({ payload: t, keyId })

async function save (store: Store, t: TestResult, keyId: string): Promise<string> {
  return (await store.testResults.save(envelopeOf(t, keyId), t, keyId)).id
}

describe('store: smoke test results', () => {
  let dir: string
  let store: Store

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-store-test-results-'))
    store = await createStore({}, { path: join(dir, 'db') })
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps one result per signer and target, indexed by release, target, image and signer, newest first', async () => {
    const first = testResult({ finishedOn: '2026-12-01T10:00:00.000Z' })
    const firstId = await save(store, first, 'key-a')
    expect(firstId).toBe(testResultIdOf(envelopeOf(first, 'key-a')))
    await save(store, testResult({ image: OTHER_IMAGE }), 'key-b')
    await save(store, testResult({ variant: 'app' }), 'key-a')
    await save(store, testResult({ commit: OTHER_COMMIT }), 'key-b')
    expect(await store.testResults.standing(firstId, first, 'key-a')).toEqual({ stored: true, signerFinishedOn: first.finishedOn, forTarget: 2 })

    // A newer result of the same signer and target replaces the older one.
    const newer = testResult({ finishedOn: '2026-12-01T11:00:00.000Z', result: 'FAILED' })
    await save(store, newer, 'key-a')
    expect(await store.testResults.standing(firstId, first, 'key-a')).toEqual({ stored: false, signerFinishedOn: newer.finishedOn, forTarget: 2 })

    const base = targetKey(first.target)
    const of = (rs: Array<{ keyId: string, testResult: TestResult }>): string[] => rs.map(r => `${r.keyId} ${r.testResult.target.variant} ${r.testResult.target.commit.slice(0, 1)} ${r.testResult.result}`)
    expect(of(await store.testResults.list())).toEqual(['key-a base c FAILED', 'key-b base d PASSED', 'key-a app c PASSED', 'key-b base c PASSED'])
    expect(of(await store.testResults.list({ repository: REPO, commit: COMMIT }))).toEqual(['key-a base c FAILED', 'key-a app c PASSED', 'key-b base c PASSED'])
    expect(of(await store.testResults.list({ key: base }))).toEqual(['key-a base c FAILED', 'key-b base c PASSED'])
    expect(of(await store.testResults.list({ manifestDigest: OTHER_IMAGE }))).toEqual(['key-b base c PASSED'])
    expect(of(await store.testResults.list({ keyId: 'key-b' }))).toEqual(['key-b base d PASSED', 'key-b base c PASSED'])
    expect(of(await store.testResults.list({ keyId: 'key-b', commit: COMMIT }))).toEqual(['key-b base c PASSED'])
    expect(of(await store.testResults.list({ commit: OTHER_COMMIT }))).toEqual(['key-b base d PASSED'])
    expect(of(await store.testResults.list({ repository: REPO }, 1))).toEqual(['key-a base c FAILED'])
    expect(await store.testResults.list({ repository: 'https://example.test/other.git', commit: COMMIT })).toEqual([])
    expect(await store.testResults.list({}, 0)).toEqual([])

    // Indexes and counters are in the store: a restart finds the same.
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(of(await store.testResults.list({ key: base }))).toEqual(['key-a base c FAILED', 'key-b base c PASSED'])
  })

  it('bounds results per target and in all, the oldest going first, also under concurrent saves', async () => {
    const per = STORE_LIMITS.maxTestResultsPerTarget
    await Promise.all(Array.from({ length: per + 3 }, async (_, i) => { await save(store, testResult(), `key-${i}`) }))
    const kept = await store.testResults.list({ key: targetKey(testResult().target) })
    // Saves are queued in call order: the first three are gone.
    expect(kept.map(r => r.keyId).reverse()).toEqual(Array.from({ length: per }, (_, i) => `key-${i + 3}`))
    expect((await store.testResults.standing('x', testResult(), 'key-0')).signerFinishedOn).toBeUndefined()

    for (let i = 0; i < STORE_LIMITS.maxTestResults + 2; i++) await save(store, testResult({ variant: `v${i}` }), 'key-a')
    const all = await store.testResults.list({}, STORE_LIMITS.maxTestResults + 10)
    expect(all).toHaveLength(STORE_LIMITS.maxTestResults)
    expect(all.at(-1)?.testResult.target.variant).toBe('v2')
    expect(await store.testResults.list({ keyId: 'key-3' })).toEqual([])
  }, 120_000)

  it('refuses a result it cannot index, naming what is wrong, and keeps what is stored', async () => {
    await save(store, testResult(), 'key-a')
    await expect(save(store, testResult({ variant: 'app' }), '')).rejects.toThrow(/test result keyId/)
    await expect(save(store, testResult({ commit: `c\x00${'c'.repeat(38)}` }), 'key-a')).rejects.toThrow(/test result commit/)
    await expect(save(store, testResult({ image: 'x'.repeat(STORE_LIMITS.maxKeyLength + 1) }), 'key-a')).rejects.toThrow(/test result manifestDigest/)
    expect((await store.testResults.list()).map(r => r.testResult.target.variant)).toEqual(['base'])
  })

  it('opens a store written when test results lived in the state space, and moves them into their own sublevels', async () => {
    await store.close()
    // The layout before: an index array under `test-results` (oldest first) and each result under `test-result/<id>`.
    const raw = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const sta = raw.sublevel<string, string>('sta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const old = [
      { keyId: 'key-a', testResult: testResult() },
      { keyId: 'key-b', testResult: testResult({ image: OTHER_IMAGE, result: 'FAILED' }) },
      { keyId: 'key-a', testResult: testResult({ commit: OTHER_COMMIT }) }
    ]
    const index = old.map(o => ({ id: testResultIdOf(envelopeOf(o.testResult, o.keyId)), key: targetKey(o.testResult.target), repository: REPO, commit: o.testResult.target.commit, keyId: o.keyId, finishedOn: o.testResult.finishedOn }))
    for (const [i, o] of old.entries()) await sta.put(`test-result/${index[i]!.id}`, JSON.stringify({ keyId: o.keyId, envelopeJson: envelopeOf(o.testResult, o.keyId), testResult: o.testResult }))
    // An index entry whose result is damaged, and one whose result is gone: neither is moved.
    await sta.put('test-result/damaged', '{not json')
    await sta.put('test-results', JSON.stringify([...index.slice(0, 2), { id: 'damaged' }, { id: 'gone' }, index[2]]))
    // This node's own outcomes waiting for agreement, oldest first (one held twice, one damaged).
    const waiting = [testResult({ variant: 'app' }), testResult({ commit: OTHER_COMMIT }), testResult({ variant: 'app' })]
    await sta.put('test-results/pending', JSON.stringify([...waiting, { target: 'damaged' }]))
    await raw.close()

    store = await createStore({}, { path: join(dir, 'db') })
    const listed = await store.testResults.list()
    expect(listed.map(r => r.id)).toEqual([index[2]!.id, index[1]!.id, index[0]!.id])
    expect(listed[2]).toEqual({ id: index[0]!.id, keyId: 'key-a', envelopeJson: envelopeOf(old[0]!.testResult, 'key-a'), testResult: old[0]!.testResult })
    expect((await store.testResults.list({ repository: REPO, commit: COMMIT })).map(r => r.keyId)).toEqual(['key-b', 'key-a'])
    expect((await store.testResults.list({ manifestDigest: OTHER_IMAGE })).map(r => r.keyId)).toEqual(['key-b'])
    expect(await store.getState('test-results')).toBeUndefined()
    expect(await store.getState(`test-result/${index[0]!.id}`)).toBeUndefined()
    expect(await store.getState('test-result/damaged')).toBeUndefined()
    expect(await store.getState('test-results/pending')).toBeUndefined()
    expect(await store.testResults.waiting.targets()).toEqual(new Set([targetKey(waiting[0]!.target), targetKey(waiting[1]!.target)]))
    expect((await store.testResults.waiting.of(targetKey(waiting[0]!.target))).map(w => w.testResult)).toEqual([waiting[0]])

    // Reopening moves nothing twice; saving goes on from there, one per signer and target as before.
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(await store.testResults.list()).toHaveLength(3)
    expect(await store.testResults.waiting.targets()).toHaveProperty('size', 2)
    await save(store, testResult({ finishedOn: '2026-12-02T10:00:00.000Z' }), 'key-a')
    expect((await store.testResults.list({ key: targetKey(testResult().target) })).map(r => `${r.keyId} ${r.testResult.finishedOn}`)).toEqual(['key-a 2026-12-02T10:00:00.000Z', 'key-b 2026-12-01T10:00:00.000Z'])
  })

  it('keeps this node\'s own outcomes waiting for a verdict by target, across a restart, the oldest going beyond the bound', async () => {
    const { waiting } = store.testResults
    const app = testResult({ variant: 'app' })
    await waiting.hold(testResult())
    await waiting.hold(app)
    await waiting.hold(testResult({ image: OTHER_IMAGE }))
    await waiting.hold(app)
    const base = targetKey(testResult().target)
    expect(await waiting.targets()).toEqual(new Set([base, targetKey(app.target)]))
    expect((await waiting.of(base)).map(w => w.testResult.manifestDigest)).toEqual([IMAGE, OTHER_IMAGE])
    // The same outcome held twice waits once.
    expect(await waiting.of(targetKey(app.target))).toHaveLength(1)

    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    const held = await store.testResults.waiting.of(base)
    expect(held).toHaveLength(2)
    await store.testResults.waiting.release([held[0]!.id, 'not-held'])
    expect((await store.testResults.waiting.of(base)).map(w => w.testResult.manifestDigest)).toEqual([OTHER_IMAGE])
    await store.testResults.waiting.release((await store.testResults.waiting.of(targetKey(app.target))).map(w => w.id))
    expect(await store.testResults.waiting.targets()).toEqual(new Set([base]))

    const max = STORE_LIMITS.maxWaitingTestResults
    for (let i = 0; i < max; i++) await store.testResults.waiting.hold(testResult({ variant: `v${i}` }))
    const targets = await store.testResults.waiting.targets()
    expect(targets.size).toBe(max)
    // The oldest went first: the one left from before, then v0.
    expect(targets.has(base)).toBe(false)
    expect(targets.has(targetKey(testResult({ variant: 'v0' }).target))).toBe(true)
    await store.testResults.waiting.hold(testResult({ variant: 'one more' }))
    expect((await store.testResults.waiting.targets()).has(targetKey(testResult({ variant: 'v0' }).target))).toBe(false)
  }, 60_000)
})
