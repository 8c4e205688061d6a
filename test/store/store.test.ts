import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Level } from 'level'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createStore, targetIndexKey, type Store, type Job } from '../../src/node/store/index.js'
import { LimitError, ValidationError } from '../../src/protocol/errors.js'
import { createIngest } from '../../src/node/ingest/index.js'
import { keyOf, putSample, sampleAnnouncement, sampleClaim } from '../node/fixtures/messages.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'

describe('level store', () => {
  let dir: string
  let store: Store

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-store-'))
    store = await createStore({}, { path: join(dir, 'db') })
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('stores a message once and hands it back', async () => {
    const m = sampleClaim(1)
    const first = await putSample(store, m)
    expect(first).toEqual({ stored: true, cursor: 1, message: await store.getMessage(m.id) })
    const again = await putSample(store, m)
    expect(again).toEqual({ stored: false, cursor: 1 })
    expect(await store.hasMessage(m.id)).toBe(true)
    expect(await store.hasMessage('sha256:nope')).toBe(false)
    const got = await store.getMessage(m.id)
    expect(got?.keyId).toBe(keyOf('key-a'))
    expect(got?.envelopeJson).toBe(m.envelopeJson)
    expect(got?.kind === 'claim' ? got.claim.target.variant : undefined).toBe('base')
    expect(Date.parse(got!.receivedAt)).not.toBeNaN()
    expect((await store.stats()).claims).toBe(1)
  })

  it('reads every claim of the named keys for a commit, however many others came first, also in a store written before that index', async () => {
    const repo = 'https://example.test/repo.git'
    const commit = 'c'.repeat(40)
    await store.close()
    store = await createStore({}, { path: join(dir, 'db'), maxClaimsPerQuery: 5 })
    for (let i = 0; i < 12; i++) await putSample(store, sampleClaim(i, { keyId: `stranger-${i}`, variant: `v${i}` }))
    await putSample(store, sampleClaim(100, { keyId: 'trusted', variant: 'base' }))
    expect((await store.claimsForCommit(repo, commit)).map(m => m.keyId)).not.toContain(keyOf('trusted'))
    expect((await store.claimsForCommit(repo, commit, [keyOf('trusted')])).map(m => m.keyId)).toContain(keyOf('trusted'))
    await store.close()
    // As an older version left it: no commit-and-key index. Opening builds it.
    const raw = new Level<string, string>(join(dir, 'db'), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    const cky = raw.sublevel<string, string>('cky', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    await cky.clear()
    await raw.sublevel<string, string>('meta', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).del('index:commit-key')
    await raw.close()
    store = await createStore({}, { path: join(dir, 'db'), maxClaimsPerQuery: 5 })
    const got = await store.claimsForCommit(repo, commit, [keyOf('trusted')])
    expect(got.map(m => m.keyId)).toContain(keyOf('trusted'))
    expect(got.map(m => m.cursor)).toEqual([...got.map(m => m.cursor)].sort((x, y) => x - y))
  })

  it('allocates strictly increasing cursors under concurrent puts', async () => {
    const results = await Promise.all(Array.from({ length: 60 }, async (_, i) => await putSample(store, sampleClaim(i))))
    const cursors = results.map(r => r.cursor).sort((a, b) => a - b)
    expect(new Set(cursors).size).toBe(60)
    expect(cursors[0]).toBe(1)
    expect(cursors[59]).toBe(60)
    // Paging walks every message once, in cursor order.
    const seen: number[] = []
    let cursor = 0
    for (;;) {
      const page = await store.messagesSince(cursor, 7)
      if (page.items.length === 0) { expect(page.next).toBe(cursor); break }
      seen.push(...page.items.map(m => m.cursor))
      cursor = page.next
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
  })

  it('indexes by target, commit, builder, release and filter', async () => {
    await putSample(store, sampleAnnouncement(1, { tag: 'v1' }))
    await putSample(store, sampleAnnouncement(2, { tag: 'v2' }))
    await putSample(store, sampleClaim(1, { keyId: 'k1', variant: 'base' }))
    await putSample(store, sampleClaim(2, { keyId: 'k2', variant: 'base' }))
    await putSample(store, sampleClaim(3, { keyId: 'k1', variant: 'nvidia' }))
    await putSample(store, sampleClaim(4, { keyId: 'k1', variant: 'base', commit: 'd'.repeat(40), tag: 'v2' }))
    const repo = 'https://example.test/repo.git'
    const base = targetIndexKey({ repository: repo, commit: 'c'.repeat(40), variant: 'base', platform: 'linux/amd64' })
    expect((await store.claimsForTarget(base)).map(m => m.keyId).sort()).toEqual([keyOf('k1'), keyOf('k2')].sort())
    expect(await store.claimsForCommit(repo, 'c'.repeat(40))).toHaveLength(3)
    expect(await store.claimsForCommit(repo, 'd'.repeat(40))).toHaveLength(1)
    expect((await store.announcements({ repository: repo, tag: 'v2' })).map(m => m.announcement.tag)).toEqual(['v2'])
    expect(await store.announcements({ repository: repo })).toHaveLength(2)
    expect(await store.announcements({ tag: 'v1' })).toHaveLength(1)
    expect((await store.messagesSince(0, 100, { keyId: keyOf('k1') })).items).toHaveLength(3)
    expect((await store.messagesSince(0, 100, { kind: 'announcement' })).items).toHaveLength(2)
    expect((await store.messagesSince(0, 100, { tag: 'v2' })).items.map(m => m.kind).sort()).toEqual(['announcement', 'claim'])
    expect((await store.messagesSince(0, 100, { repository: repo, commit: 'd'.repeat(40) })).items).toHaveLength(1)
    // Targets from announcements (amd64, arm64) and claims (nvidia, commit d).
    const targets = (await store.targets()).map(t => targetIndexKey(t)).sort()
    expect(targets).toHaveLength(4)
    const stats = await store.stats()
    expect(stats).toMatchObject({ messages: 6, announcements: 2, claims: 4, damaged: 0 })
  })

  it('rejects bad input with the field named and keeps what is stored', async () => {
    const m = sampleClaim(1)
    await putSample(store, m)
    // An oversized envelope never becomes a verified message: the ingest, the store's only writer, refuses it.
    const ingest = createIngest({ store, policy: trustNobodyPolicy() })
    await expect(ingest.record('x'.repeat(300 * 1024))).rejects.toThrow(LimitError)
    // A caller that casts its way past the type still meets the store's own checks.
    const bad = (s: ReturnType<typeof sampleClaim>, patch: Record<string, unknown>): never => ({ ...s.message, ...patch }) as never
    await expect(store.putMessage(bad(sampleClaim(3), { kind: 'bogus' }), sampleClaim(3).envelopeJson)).rejects.toThrow(/kind/)
    await expect(store.putMessage(bad(sampleClaim(4), { claim: undefined }), sampleClaim(4).envelopeJson)).rejects.toThrow(ValidationError)
    await expect(store.putMessage(bad(sampleClaim(5), { id: '' }), sampleClaim(5).envelopeJson)).rejects.toThrow(/id/)
    await expect(store.setState('k', 'x'.repeat(2 * 1024 * 1024))).rejects.toThrow(LimitError)
    expect((await store.getMessage(m.id))?.envelopeJson).toBe(m.envelopeJson)
    expect((await store.stats()).messages).toBe(1)
    // The failed puts allocated no cursor.
    expect((await putSample(store, sampleClaim(6))).cursor).toBe(2)
  })

  it('keeps jobs and state', async () => {
    const job: Job = {
      id: 'j1',
      target: sampleClaim(1).claim.target,
      announcementId: 'a1',
      recipe: { name: 'neko', digest: 'sha256:' + '1'.repeat(64) },
      state: 'queued',
      attempts: 0,
      updatedAt: new Date().toISOString()
    }
    await store.putJob(job)
    await store.putJob({ ...job, id: 'j2', state: 'done' })
    await store.putJob({ ...job, state: 'running', attempts: 1 })
    expect((await store.getJob('j1'))?.state).toBe('running')
    expect((await store.listJobs('done')).map(j => j.id)).toEqual(['j2'])
    expect(await store.listJobs()).toHaveLength(2)
    await expect(store.putJob({ ...job, state: 'weird' as 'done' })).rejects.toThrow(/job.state/)
    await store.setState('peer-cursor:abc', { cursor: 12 })
    expect(await store.getState('peer-cursor:abc')).toEqual({ cursor: 12 })
    expect(await store.getState('missing')).toBeUndefined()
    const stats = await store.stats()
    expect(stats.jobsByState).toEqual({ queued: 0, running: 1, done: 1, failed: 0, refused: 0, broken: 0, covered: 0 })
  })

  it('keeps everything after close and reopen', async () => {
    await putSample(store, sampleAnnouncement(1))
    await putSample(store, sampleClaim(1))
    await store.setState('s', [1, 2])
    await store.close()
    store = await createStore({}, { path: join(dir, 'db') })
    expect(await store.stats()).toMatchObject({ messages: 2, announcements: 1, claims: 1 })
    expect(await store.getState('s')).toEqual([1, 2])
    // The cursor continues where it left off.
    expect((await putSample(store, sampleClaim(2))).cursor).toBe(3)
  })

  it('reports and skips a damaged entry without failing', async () => {
    const a = sampleClaim(1)
    const b = sampleClaim(2)
    await putSample(store, a)
    await putSample(store, b)
    await store.close()
    // Damage one message entry behind the store's back.
    const raw = new Level<string, string>(join(dir, 'db'))
    await raw.sublevel('msg').put(a.id, '{not json')
    await raw.close()
    store = await createStore({}, { path: join(dir, 'db') })
    const page = await store.messagesSince(0, 10)
    expect(page.items.map(m => m.id)).toEqual([b.id])
    expect(page.next).toBe(2)
    expect(await store.getMessage(a.id)).toBeUndefined()
    const target = targetIndexKey(a.claim.target)
    expect((await store.claimsForTarget(target)).map(m => m.id)).toEqual([b.id])
    expect((await store.stats()).damaged).toBe(1)
    // Re-sending the damaged id does not overwrite what is there.
    expect((await putSample(store, a)).stored).toBe(false)
  })

  it('keeps every acknowledged message when the writer is killed', async () => {
    await store.close()
    const path = join(dir, 'crash')
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../node/fixtures/store-writer.ts'), path], { stdio: ['ignore', 'pipe', 'inherit'] })
    const acked: string[] = []
    const exited = new Promise<NodeJS.Signals | null>(resolve => child.on('exit', (_code, signal) => resolve(signal)))
    for await (const line of createInterface({ input: child.stdout })) {
      if (line.startsWith('ack ')) acked.push(line.slice(4))
      if (acked.length === 40) { child.kill('SIGKILL'); break }
    }
    expect(await exited).toBe('SIGKILL')
    store = await createStore({}, { path })
    for (const id of acked) expect(await store.hasMessage(id)).toBe(true)
    const stats = await store.stats()
    expect(stats.messages).toBeGreaterThanOrEqual(40)
    expect(stats.damaged).toBe(0)
  })
})
