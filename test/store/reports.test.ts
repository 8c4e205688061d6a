import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createStore, STORE_LIMITS, type Store } from '../../src/node/store/index.js'
import { reportIdOf } from '../../src/node/divergence/reports.js'
import { targetKey } from '../../src/protocol/target.js'
import type { DivergenceReport } from '../../src/protocol/divergence-report.js'

const REPO = 'https://example.test/repo.git'
const COMMIT = 'c'.repeat(40)

function report (a: string, b: string, opts: { variant?: string, tag?: string, createdAt?: string } = {}): DivergenceReport {
  return {
    target: { repository: REPO, commit: COMMIT, variant: opts.variant ?? 'base', platform: 'linux/amd64', ...(opts.tag != null ? { tag: opts.tag } : { tag: 'v1.0.0' }) },
    a: { claimId: a, keyId: 'key-a', manifestDigest: `sha256:${'a'.repeat(64)}` },
    b: { claimId: b, keyId: 'key-b', manifestDigest: `sha256:${'b'.repeat(64)}` },
    paths: { total: 1, explained: 1 },
    causes: [],
    layers: [],
    fetched: { entries: 1, bytes: 10 },
    createdAt: opts.createdAt ?? '2026-12-01T10:00:00.000Z'
  }
}

/** The envelope text stands in for a signed one: the store keeps it as given and names it by its hash. */
const envelopeOf = (r: DivergenceReport): string => JSON.stringify({ payload: r })

describe('store: divergence reports', () => {
  let dir: string
  let store: Store

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-store-reports-'))
    store = await createStore({}, { path: join(dir, 'db') })
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('keeps one report per pair of claims, indexed by target and by pair, newest first', async () => {
    const first = report('c1', 'c2', { createdAt: '2026-12-01T10:00:00.000Z' })
    const other = report('c3', 'c4', { variant: 'app', tag: 'v2.0.0' })
    const saved = await store.reports.save(envelopeOf(first), first, 'key-a')
    expect(saved.id).toBe(reportIdOf(envelopeOf(first)))
    await store.reports.save(envelopeOf(other), other, 'key-a')
    expect(await store.reports.has('c1', 'c2')).toBe(true)
    expect(await store.reports.has('c2', 'c1')).toBe(false)
    expect(await store.reports.standing(saved.id, first)).toEqual({ stored: true, pairCreatedAt: first.createdAt, forTarget: 1 })

    const newer = report('c1', 'c2', { createdAt: '2026-12-01T11:00:00.000Z' })
    await store.reports.save(envelopeOf(newer), newer, 'key-a')
    expect((await store.reports.list()).map(r => r.report.createdAt)).toEqual([newer.createdAt, other.createdAt])
    expect(await store.reports.standing(saved.id, first)).toEqual({ stored: false, pairCreatedAt: newer.createdAt, forTarget: 1 })
    expect((await store.reports.list({ key: targetKey(other.target) })).map(r => r.report.a.claimId)).toEqual(['c3'])
    expect((await store.reports.list({ tag: 'v2.0.0' })).map(r => r.report.a.claimId)).toEqual(['c3'])
    expect((await store.reports.list({ repository: REPO }, 1)).map(r => r.report.a.claimId)).toEqual(['c1'])
    expect(await store.reports.list({ repository: 'https://example.test/other.git' })).toEqual([])
  })

  it('bounds reports per target and in all, the oldest going first, also under concurrent saves', async () => {
    const per = STORE_LIMITS.maxReportsPerTarget
    await Promise.all(Array.from({ length: per + 4 }, async (_, i) => {
      const r = report(`a${i}`, 'b')
      await store.reports.save(envelopeOf(r), r, 'key-a')
    }))
    const kept = await store.reports.list()
    expect(kept).toHaveLength(per)
    // Saves are queued in call order: the first four are gone.
    expect(kept.map(r => r.report.a.claimId).reverse()).toEqual(Array.from({ length: per }, (_, i) => `a${i + 4}`))
    expect(await store.reports.has('a0', 'b')).toBe(false)

    for (let i = 0; i < STORE_LIMITS.maxReports + 2; i++) {
      const r = report(`x${i}`, 'y', { variant: `v${i}` })
      await store.reports.save(envelopeOf(r), r, 'key-a')
    }
    const all = await store.reports.list({}, STORE_LIMITS.maxReports + 10)
    expect(all).toHaveLength(STORE_LIMITS.maxReports)
    expect(all.at(-1)?.report.a.claimId).toBe('x2')
    expect(await store.reports.has(`x${STORE_LIMITS.maxReports + 1}`, 'y')).toBe(true)
  })

  it('keeps its version counter in the store: it changes with every save and survives a restart', async () => {
    const v0 = store.reports.version()
    const r = report('c1', 'c2')
    await store.reports.save(envelopeOf(r), r, 'key-a')
    const v1 = store.reports.version()
    expect(v1).not.toBe(v0)
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(store.reports.version()).toBe(v1)
    const r2 = report('c3', 'c4')
    await store.reports.save(envelopeOf(r2), r2, 'key-a')
    expect(store.reports.version()).not.toBe(v1)
    expect(store.reports.version()).not.toBe(v0)
  })

  it('refuses a bad key id, naming it, and keeps what is stored', async () => {
    const r = report('c1', 'c2')
    await store.reports.save(envelopeOf(r), r, 'key-a')
    const r2 = report('c3', 'c4')
    await expect(store.reports.save(envelopeOf(r2), r2, '')).rejects.toThrow(/report keyId/)
    await expect(store.reports.save(envelopeOf(r2), r2, 'x'.repeat(STORE_LIMITS.maxKeyLength + 1))).rejects.toThrow(/report keyId/)
    expect((await store.reports.list()).map(r => r.report.a.claimId)).toEqual(['c1'])
  })

  it('opens a store written when reports lived in the state space, and moves them into their own sublevels', async () => {
    await store.close()
    // The layout before: an index array under `divergences` (oldest first) and each report under `divergence/<id>`.
    const raw = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const sta = raw.sublevel<string, string>('sta', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const old = [report('c1', 'c2', { createdAt: '2026-12-01T09:00:00.000Z' }), report('c3', 'c4', { variant: 'app', tag: 'v2.0.0' })]
    const index = old.map(r => ({ id: reportIdOf(envelopeOf(r)), key: targetKey(r.target), repository: REPO, tag: r.target.tag, pair: `${r.a.claimId} ${r.b.claimId}`, createdAt: r.createdAt }))
    for (const [i, r] of old.entries()) await sta.put(`divergence/${index[i]!.id}`, JSON.stringify({ keyId: 'key-a', envelopeJson: envelopeOf(r), report: r }))
    await sta.put('divergences', JSON.stringify(index))
    await sta.put('other-state', JSON.stringify({ kept: true }))
    await raw.close()

    store = await createStore({}, { path: join(dir, 'db') })
    const listed = await store.reports.list()
    expect(listed.map(r => r.id)).toEqual([index[1]!.id, index[0]!.id])
    expect(listed[1]).toEqual({ id: index[0]!.id, keyId: 'key-a', envelopeJson: envelopeOf(old[0]!), report: old[0] })
    expect(await store.reports.has('c3', 'c4')).toBe(true)
    expect(await store.getState('divergences')).toBeUndefined()
    expect(await store.getState(`divergence/${index[0]!.id}`)).toBeUndefined()
    expect(await store.getState('other-state')).toEqual({ kept: true })
    // Reopening does not move anything twice; saving goes on from there.
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(await store.reports.list()).toHaveLength(2)
    const next = report('c5', 'c6')
    await store.reports.save(envelopeOf(next), next, 'key-a')
    expect((await store.reports.list()).map(r => r.report.a.claimId)).toEqual(['c5', 'c3', 'c1'])
  })
  it('opens a store written when the divergence service was named triage: its follower cursor and pending comparisons keep their place', async () => {
    await store.setState('follower-cursor:triage', 42)
    await store.setState('triage-pending', [['own', 'other']])
    await store.setState('follower-cursor:scheduler', 7)
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(await store.getState('follower-cursor:divergence')).toBe(42)
    expect(await store.getState('divergence-pending')).toEqual([['own', 'other']])
    expect(await store.getState('follower-cursor:triage')).toBeUndefined()
    expect(await store.getState('triage-pending')).toBeUndefined()
    expect(await store.getState('follower-cursor:scheduler')).toBe(7)
    // A key written under the new name since is not overwritten by a stale old one.
    await store.setState('triage-pending', [['stale', 'pair']])
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(await store.getState('divergence-pending')).toEqual([['own', 'other']])
    expect(await store.getState('triage-pending')).toBeUndefined()
  })
})
