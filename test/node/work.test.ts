import { describe, expect, it } from 'vitest'
import { signNotice, type Notice } from '../../src/protocol/notice.js'
import { targetKey } from '../../src/protocol/target.js'
import { askOrder, buildsPerTarget, chooseWork, createNoticeBook, createWork, decide, mustGiveWay, rankCandidates, reuseBase, type Candidate, type TargetState, type WorkView } from '../../src/node/work/index.js'
import type { Recipe } from '../../src/node/rebuilder/index.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createStore } from '../../src/node/store/index.js'
import type { Job } from '../../src/node/store/types.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { decodeNotice } from '../../src/protocol/notice.js'
import { fixedIdentity, makePolicy, successClaim, target } from '../protocol/fixtures.js'
import { formatJobs } from '../../src/cli/jobs-format.js'

const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`)
const candidates: Candidate[] = keys.map(k => ({ keyId: k, emulated: false }))

function state (over: Partial<TargetState> = {}, key = 'T'): TargetState {
  return { key, release: 'R', settled: false, counted: new Set(), done: 0, ranked: rankCandidates('R', key, candidates), expectedMs: 600_000, openSince: 0, ...over }
}

function view (self: string, over: Partial<WorkView> = {}): WorkView {
  return { now: 0, self, r: 3, stepMs: 15_000, busyUntil: () => undefined, ...over }
}

describe('shared work: choosing targets', () => {
  it('r defaults to threshold + 1; buildsPerTarget overrides it', () => {
    expect(buildsPerTarget({ threshold: 2 })).toBe(3)
    expect(buildsPerTarget({ threshold: 2, buildsPerTarget: 2 })).toBe(2)
  })

  it('the first r candidates in rendezvous order take a target, the others wait their turn', () => {
    const t = state()
    const takers = keys.filter(k => decide(t, view(k)).action === 'take')
    expect(takers.sort()).toEqual(t.ranked.slice(0, 3).map(c => c.keyId).sort())
    const fourth = t.ranked[3]!.keyId
    expect(decide(t, view(fourth))).toEqual({ key: 'T', action: 'wait', until: 15_000 })
    // Those ahead did not take it in time (they left): the fourth takes it.
    expect(decide(t, view(fourth, { now: 15_000 })).action).toBe('take')
  })

  it('different targets get different takers (the order is per target)', () => {
    const firsts = new Set(Array.from({ length: 20 }, (_, i) => rankCandidates('R', `T${i}`, candidates)[0]!.keyId))
    expect(firsts.size).toBeGreaterThan(3)
  })

  it('counts builds done and in progress: a covered or settled target is skipped', () => {
    const t = state()
    const first = t.ranked[0]!.keyId
    expect(decide(state({ settled: true }), view(first))).toMatchObject({ action: 'skip', reason: 'settled' })
    expect(decide(state({ done: 3, counted: new Set(keys.slice(4, 7)) }), view(first))).toMatchObject({ action: 'skip', reason: 'built' })
    expect(decide(state({ counted: new Set(keys.filter(k => k !== first).slice(0, 3)) }), view(first))).toMatchObject({ action: 'skip', reason: 'covered' })
  })

  it('a busy candidate ahead steps aside unless it would still finish first; emulated builders come after native ones', () => {
    const mixed: Candidate[] = [{ keyId: 'native', emulated: false }, { keyId: 'emu', emulated: true }]
    const ranked = rankCandidates('R', 'A', mixed)
    expect(ranked.map(c => c.keyId)).toEqual(['native', 'emu'])
    const t = state({ key: 'A', ranked })
    // The native builder is free in 5 min: 5 + 10 min beats 60 min under emulation.
    expect(decide(t, view('emu', { r: 1, busyUntil: k => k === 'native' ? 300_000 : undefined }))).toEqual({ key: 'A', action: 'wait', until: 315_000 })
    // Free only in 2 h: the emulated builder takes it now.
    expect(decide(t, view('emu', { r: 1, busyUntil: k => k === 'native' ? 7_200_000 : undefined })).action).toBe('take')
  })

  it('builders holding the target\'s base are asked first, idle or soon free; one busy for long is passed over', () => {
    const t = state({ expectedMs: 720_000 })
    const holder = t.ranked[5]!.keyId
    const first = t.ranked[0]!.keyId
    const held = state({ expectedMs: 720_000, reuse: { holders: new Set([holder]), ms: 120_000 } })
    expect([...askOrder(held)][0]!.keyId).toBe(holder)
    expect(decide(held, view(holder, { r: 1 })).action).toBe('take')
    expect(decide(held, view(first, { r: 1 }))).toEqual({ key: 'T', action: 'wait', until: 15_000 })
    // Free in 5 min: 5 + 2 min beats 12 min from scratch.
    expect(decide(held, view(first, { r: 1, busyUntil: k => k === holder ? 300_000 : undefined }))).toEqual({ key: 'T', action: 'wait', until: 315_000 })
    // Free in 9.5 min: 11.5 min saves less than a tenth of 12 min, not worth the wait.
    expect(decide(held, view(first, { r: 1, busyUntil: k => k === holder ? 570_000 : undefined })).action).toBe('take')
    // Without holders the order is the rendezvous order.
    expect([...askOrder(t)]).toEqual(t.ranked)
  })

  it('a builder past its expected end counts as about to be free', () => {
    const t = state({ openSince: 600_000 })
    const [a, b] = [t.ranked[0]!.keyId, t.ranked[1]!.keyId]
    expect(decide(t, view(b, { now: 600_000, r: 1, busyUntil: k => k === a ? 599_000 : undefined }))).toEqual({ key: 'T', action: 'wait', until: 615_000 })
    expect(decide(t, view(b, { now: 600_000, r: 1, busyUntil: k => k === a ? 1_200_000 : undefined })).action).toBe('take')
  })

  it('when notices cross, the builds that would end last give way, not one well under way', () => {
    const ranked = rankCandidates('R', 'T', candidates)
    const [first, second, third] = ranked.map(c => c.keyId)
    const building = [first!, second!, third!]
    // r = 2 and three building: by the order alone, the third gives way.
    expect(building.filter(k => mustGiveWay({ self: k, r: 2, done: 0, building, ranked }))).toEqual([third])
    // The first started 10 min ago on a 12 min build, the others just now: one of those yields.
    const ends = new Map([[first!, 120_000], [second!, 720_000], [third!, 720_500]])
    expect(building.filter(k => mustGiveWay({ self: k, r: 2, done: 0, building, ranked, endsAt: x => ends.get(x) }))).toEqual([third])
    const late = new Map([[first!, 730_000], [second!, 720_000], [third!, 120_000]])
    expect(building.filter(k => mustGiveWay({ self: k, r: 2, done: 0, building, ranked, endsAt: x => late.get(x) }))).toEqual([first])
  })

  it('an idle builder ahead has its turn from when it was last seen ending a build', () => {
    const t = state()
    const [a, b] = [t.ranked[0]!.keyId, t.ranked[1]!.keyId]
    // Never seen busy: its turn began when the target opened, long ago.
    expect(decide(t, view(b, { now: 600_000, r: 1 })).action).toBe('take')
    // Its claim came a moment ago: it is given its step.
    expect(decide(t, view(b, { now: 600_000, r: 1, freeSince: k => k === a ? 599_000 : undefined }))).toEqual({ key: 'T', action: 'wait', until: 614_000 })
  })

  it('takes fewest-built targets first, and at most its free slots', () => {
    const a = state({ counted: new Set(['x', 'y']) }, 'A')
    const b = state({}, 'B')
    const me = keys.find(k => decide(a, view(k)).action === 'take' && decide(b, view(k)).action === 'take')!
    const plan = chooseWork([a, b], view(me), 1)
    expect(plan.take).toEqual(['B'])
  })
})

describe('shared work: the notice book', () => {
  const { policy, builders } = makePolicy(3)
  const stranger = fixedIdentity(99)
  const now = Date.now()
  const iso = (ms: number): string => new Date(ms).toISOString()
  const notice = (over: Partial<Notice> = {}): Notice => ({ target: target(), engineId: 'E1', expectedMs: 600_000, startedAt: iso(now), issuedAt: iso(now), expiresAt: iso(now + 180_000), ...over })
  const bytes = (n: Notice, who = builders[0]!): Uint8Array => Buffer.from(JSON.stringify(signNotice(n, who)))

  it('keeps a trusted notice, refuses forged and long-expired ones, ignores replays and recent expiries', () => {
    const book = createNoticeBook({ policy: () => policy })
    expect(book.receive(bytes(notice()), now).verdict).toBe('accept')
    expect(book.live(targetKey(target()), now)).toHaveLength(1)
    expect(book.busyUntil(builders[0]!.keyId, now)).toBe(now + 600_000)
    // The same notice again, or an older one: a replay, ignored (honest relays repeat too).
    expect(book.receive(bytes(notice()), now).verdict).toBe('ignore')
    expect(book.receive(bytes(notice({ issuedAt: iso(now - 1000), startedAt: iso(now - 1000) })), now).verdict).toBe('ignore')
    const forged = JSON.parse(Buffer.from(bytes(notice({ issuedAt: iso(now + 1) }))).toString()) as { signatures: Array<{ sig: string }> }
    forged.signatures[0]!.sig = Buffer.alloc(64).toString('base64')
    expect(book.receive(Buffer.from(JSON.stringify(forged)), now).verdict).toBe('reject')
    expect(book.receive(bytes(notice({ issuedAt: iso(now - 600_000), startedAt: iso(now - 600_000), expiresAt: iso(now - 300_000) })), now).verdict).toBe('reject')
    expect(book.receive(bytes(notice({ issuedAt: iso(now - 200_000), startedAt: iso(now - 200_000), expiresAt: iso(now - 10_000) })), now).verdict).toBe('ignore')
    expect(book.receive(Buffer.alloc(5000, 0x20), now).verdict).toBe('reject')
  })

  it('relays a stranger\'s notice at a bounded rate and never counts it', () => {
    const book = createNoticeBook({ policy: () => policy }, { untrustedPerMinute: 1 })
    const verdicts = [0, 1, 2, 3, 4].map(i => book.receive(bytes(notice({ issuedAt: iso(now + i), startedAt: iso(now) }), stranger), now).verdict)
    expect(verdicts.slice(0, 3)).toEqual(['accept', 'accept', 'accept'])
    expect(verdicts[4]).toBe('ignore')
    expect(book.live(targetKey(target()), now)).toHaveLength(0)
    expect(book.busyUntil(stranger.keyId, now)).toBeUndefined()
  })

  it('a withdrawal reopens the target at once; an expiry without a claim counts as a lapse', () => {
    const book = createNoticeBook({ policy: () => policy })
    const key = targetKey(target())
    book.receive(bytes(notice()), now)
    book.receive(bytes(notice({ withdrawn: true, issuedAt: iso(now + 5) })), now + 5)
    expect(book.live(key, now + 5)).toHaveLength(0)
    expect(book.reopenedAt(key)).toBe(now + 5)
    book.receive(bytes(notice(), builders[1]!), now)
    book.receive(bytes(notice({ target: target({ variant: 'xfce' }) }), builders[1]!), now)
    book.receive(bytes(notice(), builders[2]!), now)
    book.claimed(builders[2]!.keyId, key)
    expect(book.prune(now + 180_001)).toBeUndefined()
    // The target wanted builds again once the renewal was overdue (half the life + 30 s grace).
    expect(book.reopenedAt(key)).toBe(now + 120_000)
    expect(book.lapsed()).toEqual([expect.objectContaining({ keyId: builders[1]!.keyId, name: 'b1', lapsed: 2 })])
  })

  it('a notice whose renewal is overdue stops counting before it expires; a renewal keeps it', () => {
    const book = createNoticeBook({ policy: () => policy })
    const key = targetKey(target())
    book.receive(bytes(notice()), now)
    book.receive(bytes(notice(), builders[1]!), now)
    // Renewed at half its life by one builder; the other crashed and sent nothing more.
    book.receive(bytes(notice({ issuedAt: iso(now + 90_000), expiresAt: iso(now + 270_000) }), builders[1]!), now + 90_000)
    expect(book.live(key, now + 119_000)).toHaveLength(2)
    expect(book.prune(now + 100_000)).toBe(now + 120_000)
    expect(book.live(key, now + 121_000).map(d => d.keyId)).toEqual([builders[1]!.keyId])
    expect(book.busyUntil(builders[0]!.keyId, now + 121_000)).toBeUndefined()
    book.prune(now + 121_000)
    expect(book.reopenedAt(key)).toBe(now + 120_000)
  })

  it('holds at most maxNotices, dropping the one nearest its end', () => {
    const book = createNoticeBook({ policy: () => policy }, { maxNotices: 2 })
    for (let i = 0; i < 3; i++) book.receive(bytes(notice({ expiresAt: iso(now + 60_000 * (i + 1)) }), builders[i]!), now)
    expect(book.size()).toBe(2)
    expect(book.busyUntil(builders[0]!.keyId, now)).toBeUndefined()
  })
})

describe('shared work: one base per release', () => {
  const recipe = { name: 'neko', variants: [{ name: 'base' }, { name: 'firefox', from: { BASE_IMAGE: 'base' } }, { name: 'tool' }] } as unknown as Recipe

  it('knows which base a target is or is built on', () => {
    expect(reuseBase(recipe, 'base')).toBe('base')
    expect(reuseBase(recipe, 'firefox')).toBe('base')
    expect(reuseBase(recipe, 'tool')).toBeUndefined()
    expect(reuseBase(undefined, 'firefox')).toBeUndefined()
  })

  it('a node that built the base takes an app ahead of builders ranked before it, and announces the shorter build', async () => {
    const { policy, builders } = makePolicy(4, { threshold: 2 })
    const app = target({ variant: 'firefox' })
    const appKey = targetKey(app)
    // The builder ranked last for the app: without the base it waits for the three ahead of it.
    const ranked = rankCandidates('ann-1', appKey, builders.map(b => ({ keyId: b.keyId, emulated: false })))
    const self = builders.find(b => b.keyId === ranked[3]!.keyId)!
    const other = builders.find(b => b.keyId !== self.keyId)!
    const baseClaim = { ...successClaim(`sha256:${'b'.repeat(64)}`, target({ variant: 'base' })), startedOn: '2026-01-01T00:00:00Z', finishedOn: '2026-01-01T00:10:00Z' }
    const job: Job = { id: appKey, target: app, announcementId: 'ann-1', recipe: { name: 'neko', digest: `sha256:${'e'.repeat(64)}` }, state: 'queued', attempts: 0, updatedAt: '2026-01-01T00:00:00Z' }
    const dir = await mkdtemp(join(tmpdir(), 'work-bases-'))
    const make = async (name: string, claimers: SigningIdentity[]): Promise<{ work: ReturnType<typeof createWork>, sent: Uint8Array[], close: () => Promise<void> }> => {
      const store = await createStore({}, { path: join(dir, name) })
      const sent: Uint8Array[] = []
      const work = createWork({
        store,
        policy: () => policy,
        identity: self,
        builders: () => builders.map(b => ({ keyId: b.keyId, trusted: true, self: b.keyId === self.keyId, capabilities: { builds: true, platforms: [{ platform: 'linux/amd64', emulated: false }] } })),
        engineId: () => `engine-${self.keyId.slice(0, 8)}`,
        publish: async (data) => { sent.push(data) },
        recipeOf: () => recipe
      }, { defaultExpectedMs: 12 * 60_000 })
      // Base claims as gossip stores them; the first teaches the base's build time (10 min).
      for (const who of claimers) {
        const envelopeJson = JSON.stringify(signClaim(baseClaim, who))
        const put = await store.putMessage(decodeMessage(envelopeJson, { allowEmbeddedKeys: true }), envelopeJson)
        if (put.stored && put.message.kind === 'claim') work.claimStored(put.message)
      }
      return { work, sent, close: async () => { await work.stop(); await store.close() } }
    }
    try {
      const without = await make('without', [other])
      expect((await without.work.plan([job], 1)).take).toEqual([])
      await without.close()
      const holding = await make('holding', [other, self])
      const plan = await holding.work.plan([job], 1)
      expect(plan.take.map(j => j.id)).toEqual([appKey])
      holding.work.started(job)
      // The notice says 2 min (12 min expected for the app, nothing learned, less the 10 min base it holds), not 12.
      expect(decodeNotice(Buffer.from(holding.sent[0]!).toString('utf8')).notice.expectedMs).toBe(2 * 60_000)
      await holding.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('shared work: what `jobs` says', () => {
  it('counts covered jobs and names takers whose notices keep lapsing', () => {
    const text = formatJobs({
      queued: [],
      running: [],
      recent: [],
      counts: { queued: 0, running: 0, done: 2, failed: 0, refused: 0, broken: 0, covered: 5 },
      host: { state: 'ok' },
      lapsedTakers: [{ keyId: 'k'.repeat(64), name: 'bob-arm64', lapsed: 3, lastTarget: 'repo@c#xfce@linux/arm64', lastExpiredAt: '2026-03-01T12:00:00.000Z' }]
    })
    expect(text).toContain('2 done, 0 failed, 0 refused, 0 broken, 5 covered by others')
    expect(text).toContain('TAKERS WHOSE NOTICES EXPIRE WITHOUT A CLAIM\n  bob-arm64  3 lapsed, last repo@c#xfce@linux/arm64 at 2026-03-01T12:00:00.000Z')
  })
})
