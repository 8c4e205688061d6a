import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, storeBackfillSource, type Daemon, type DaemonInit } from '../../src/node/daemon/index.js'
import { createIngest } from '../../src/node/ingest/index.js'
import { createP2PNode, TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signClaim } from '../../src/protocol/messages.js'
import type { TrustPolicy } from '../../src/protocol/policy.js'
import { claim, REPO, target } from '../http/fixtures.js'
import { catchUpNote } from '../../src/cli/release-source.js'
import { HISTORY_TARGETS, makeHistory } from '../helpers/history.js'
import { LOOPBACK, policyFor, storeVerdicts, waitFor } from './helpers.js'

// Real daemons (level store, libp2p on loopback): a node catching up from peers that hold history.

describe('catching up', () => {
  let root: string
  const daemons: Daemon[] = []
  let n = 0

  async function start (policy: TrustPolicy, init: Partial<DaemonInit> = {}, identity: SigningIdentity = generateIdentity(), seed: string[] = []): Promise<Daemon> {
    const store = await createStore({}, { path: join(root, `n${n++}`) })
    const d = await createDaemon({ identity, store, policy }, { listen: [LOOPBACK], bootstrap: [], mdns: false, gossip: { heartbeatIntervalMs: 100 }, ...init })
    if (seed.length > 0) await d.ingest.recordMany(seed)
    await d.start()
    daemons.push(d)
    return d
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-catchup-'))
  })

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('a store serves its newest items first, below a cursor, and within a byte budget', async () => {
    const history = makeHistory(300)
    const policy = policyFor(history.builders, [history.announcer])
    const store = await createStore({}, { path: join(root, `n${n++}`) })
    try {
      await createIngest({ store, policy }).recordMany(history.envelopes)
      const total = history.envelopes.length
      const source = storeBackfillSource(store)
      const text = (items: Uint8Array[]): string[] => items.map(i => Buffer.from(i).toString('utf8'))
      const newest = await source({ cursor: 0, limit: 128, newest: true })
      expect(newest).toMatchObject({ from: total - 128, next: total, head: total })
      expect(text(newest.items)).toEqual(history.envelopes.slice(total - 128))
      const below = await source({ cursor: 0, limit: 128, newest: true, before: total - 127 })
      expect(below).toMatchObject({ from: total - 256, next: total - 128 })
      expect(text(below.items)).toEqual(history.envelopes.slice(total - 256, total - 128))
      const oldest = await source({ cursor: 0, limit: 128, before: 11 })
      expect(oldest).toMatchObject({ from: 0, next: 10 })
      expect(text(oldest.items)).toEqual(history.envelopes.slice(0, 10))
      // Over the byte budget, a newest page drops its oldest items and says where it starts.
      const budget = history.envelopes.slice(total - 3).reduce((b, e) => b + Buffer.byteLength(e), 0)
      const small = await source({ cursor: 0, limit: 128, newest: true, maxBytes: budget })
      expect(small).toMatchObject({ from: total - 3, next: total })
      expect(text(small.items)).toEqual(history.envelopes.slice(total - 3))
      expect(await source({ cursor: total, limit: 128, newest: true })).toEqual({ items: [], next: total, from: total, head: total })
    } finally {
      await store.close()
    }
  })

  it('a fresh node reads two honest peers at the speed of verification: the newest release first, nothing verified twice', async () => {
    const history = makeHistory(2000)
    const policy = policyFor(history.builders, [history.announcer])
    const a = await start(policy, {}, undefined, history.envelopes)
    const b = await start(policy, {}, undefined, history.envelopes)
    const total = history.envelopes.length
    // Two pages a minute for pages that bring nothing: the old fixed pace would take 8 minutes.
    const fresh = await start(policy, { backfill: { maxPages: 2 }, bootstrap: [a.multiaddrs()[0]!, b.multiaddrs()[0]!] })
    const order: string[] = []
    const kinds: string[] = []
    fresh.onStored(m => { order.push(m.kind === 'announcement' ? m.announcement.commit : m.claim.target.commit); kinds.push(m.kind) })
    let maxBehind = 0
    await waitFor('every message stored', () => {
      maxBehind = Math.max(maxBehind, fresh.stats().backfill.behind)
      return order.length >= total
    }, 60_000)
    const s = fresh.stats().backfill
    expect(s.stored).toBe(total)
    expect(s.rejected).toBe(0)
    // Each item verified once: the second peer's copies were skipped by hash.
    expect(s.verified).toBe(total)
    expect(s.skipped).toBeGreaterThan(0)
    expect(maxBehind).toBeGreaterThan(0)
    await waitFor('nothing behind', () => fresh.stats().backfill.behind === 0, 10_000)
    // Every announcement came first (no claim can be judged without its release's): at most
    // the other peer's first page of claims, read side by side, came between them.
    const announcements = kinds.filter(k => k === 'announcement').length
    expect(announcements).toBeGreaterThan(1)
    expect(kinds.lastIndexOf('announcement')).toBeLessThan(announcements + 128)
    // Then the newest release's claims came with the first pages: each peer's newest page first
    // (the two are verified side by side, so their items interleave).
    const claimsAt = (commit: string): number[] => order.map((c, i) => c === commit && kinds[i] === 'claim' ? i : -1).filter(i => i >= 0)
    const newestAt = claimsAt(history.newest.commit)
    expect(newestAt).toHaveLength(HISTORY_TARGETS.length * history.builders.length)
    expect(Math.max(...newestAt)).toBeLessThan(announcements + 2 * 2 * 128)
    // The oldest release's claims came after them.
    expect(Math.min(...claimsAt('1'.padStart(40, '0')))).toBeGreaterThan(Math.max(...newestAt))
    const mine = await storeVerdicts(fresh.store, policy, REPO, history.newest.commit)
    expect(mine.map(v => v.status)).toEqual(HISTORY_TARGETS.map(() => 'reproducible'))
    expect(mine).toEqual(await storeVerdicts(a.store, policy, REPO, history.newest.commit))
  }, 120_000)

  it('a server that holds another policy\'s announcements is read whole and not penalised for them', async () => {
    const history = makeHistory(200)
    // The server's operator also trusts another announcer, whose releases it holds and serves.
    const foreign = makeHistory(40, { signers: history.builders })
    const server = await start(policyFor(history.builders, [history.announcer, foreign.announcer]), {}, undefined, [...history.envelopes, ...foreign.envelopes])
    const fresh = await start(policyFor(history.builders, [history.announcer]), { bootstrap: [server.multiaddrs()[0]!] })
    const ours = await storeVerdicts(server.store, policyFor(history.builders, [history.announcer]), REPO, history.newest.commit)
    await waitFor('our releases read', async () => (await storeVerdicts(fresh.store, policyFor(history.builders, [history.announcer]), REPO, history.newest.commit)).every(v => v.status === 'reproducible'), 30_000)
    const served = (await server.store.messagesSince(0, 10_000)).items.length
    await waitFor('the whole history read', () => { const b = fresh.stats().backfill; return b.behind === 0 && b.verified + b.skipped >= served }, 30_000)
    const s = fresh.stats().backfill
    expect([s.rejected, s.penalised]).toEqual([0, 0])
    expect(fresh.p2p.score(server.p2p.peerId)).toBeGreaterThanOrEqual(0)
    expect(ours.map(v => v.status)).toEqual(HISTORY_TARGETS.map(() => 'reproducible'))
  }, 60_000)

  it('a peer serving junk that honest peers also hold does not hold their catch-ups back', async () => {
    const history = makeHistory(1500)
    const policy = policyFor(history.builders, [history.announcer])
    // Untrusted claims on many targets, which the honest peers also stored (by gossip, say): the
    // newest page of each honest peer repeats what the hostile peer sent first.
    const strangers = makeHistory(400, { builders: 4 })
    const junk = strangers.envelopes.filter(e => !e.includes(strangers.announcer.keyId)).slice(0, 128)
    const a = await start(policy, {}, undefined, [...history.envelopes, ...junk])
    const b = await start(policy, {}, undefined, [...history.envelopes, ...junk])
    const pool = [...junk, ...makeHistory(2000, { builders: 5 }).envelopes].map(e => Buffer.from(e))
    const hostile = await createP2PNode({
      privateKey: generateIdentity().privateKey,
      validate: () => 'ignore',
      onMessage: () => {},
      // The shared junk first, then other junk (its catch-up slows but goes on), then it stalls.
      backfillSource: async ({ cursor, limit }) => {
        if (cursor >= pool.length) return await new Promise<never>(() => {})
        const items = pool.slice(cursor, cursor + limit)
        return { items, next: cursor + items.length, from: cursor, head: 1_000_000 }
      }
    }, { listen: [LOOPBACK], mdns: false })
    await hostile.start()
    try {
      const fresh = await start(policy, { bootstrap: [hostile.multiaddrs()[0]!] })
      await waitFor('the hostile peer\'s first page verified', () => fresh.stats().backfill.verified >= 128, 20_000)
      await fresh.p2p.dial(a.multiaddrs()[0]!)
      await fresh.p2p.dial(b.multiaddrs()[0]!)
      const releases = history.envelopes.filter(e => e.includes(history.announcer.keyId)).length
      const perRelease = HISTORY_TARGETS.length * history.builders.length
      // Without waiting on the hostile peer's catch-up (it ends only at its stall's deadline).
      const trustedClaims = async (commit: string): Promise<number> => (await fresh.store.claimsForCommit(REPO, commit)).filter(c => policy.builderKeys.has(c.keyId)).length
      await waitFor('the honest history read', async () =>
        (await fresh.store.announcements()).length === releases &&
        await trustedClaims(history.newest.commit) === perRelease &&
        await trustedClaims('1'.padStart(40, '0')) === perRelease, 20_000)
    } finally {
      await hostile.stop()
    }
  }, 90_000)

  it('a server whose pages bring only untrusted claims gets maxPages pages, then waits for the interval', async () => {
    const trusted = makeHistory(10)
    const policy = policyFor(trusted.builders, [trusted.announcer])
    // Valid claims by keys outside the policy: no announcements (those would be refused outright).
    const strangers = makeHistory(2000, { builders: 5 })
    const perRelease = 1 + HISTORY_TARGETS.length * 5
    const flood = strangers.envelopes.filter((_, i) => i % perRelease !== 0)
    const server = await start(policy, {}, undefined, flood)
    const fresh = await start(policy, { backfill: { maxPages: 3 }, bootstrap: [server.multiaddrs()[0]!], http: { host: '127.0.0.1', port: 0 } })
    await waitFor('the catch-up paced', () => fresh.stats().backfill.paced >= 1, 20_000)
    await new Promise(resolve => setTimeout(resolve, 1000))
    const s = fresh.stats().backfill
    expect(s.pages).toBe(3)
    expect(s.idlePages).toBe(3)
    expect(s.verified).toBeLessThanOrEqual(3 * 128)
    expect(s.behind).toBeGreaterThan(flood.length - 3 * 128 - 1)
    // What `status --node` and the dashboard read: /healthz says how far behind the node is.
    const health = await (await fetch(`${fresh.httpUrl()!}/healthz`)).json() as { catchUp: { behind: number } }
    expect(health.catchUp.behind).toBe(s.behind)
    expect(await catchUpNote(fresh.httpUrl()!)).toMatch(/is catching up: [\d,]+ messages behind its peers(, about \d+ (s|min) left)?; claims it has not read yet are missing/)
    expect(await catchUpNote(server.httpUrl() ?? 'http://127.0.0.1:9/')).toBeUndefined()
  }, 60_000)

  it('a burst of one builder\'s 90 claims over the trusted-key rate reaches the other nodes whole within a minute', async () => {
    const builder = generateIdentity()
    const announcer = generateIdentity()
    const policy = policyFor([builder], [announcer], 1)
    const origin = await start(policy, {}, builder)
    const y = await start(policy, { bootstrap: [origin.multiaddrs()[0]!] })
    const z = await start(policy, { bootstrap: [origin.multiaddrs()[0]!, y.multiaddrs()[0]!] })
    await waitFor('a gossip mesh', () => [origin, y, z].every(d => (d.p2p.stats().mesh[TOPICS.claims] ?? 0) >= 2), 30_000)
    const commit = '9'.repeat(40)
    const envelopes = Array.from({ length: 90 }, (_, i) => JSON.stringify(signClaim(claim(target(commit, `v${i}`, 'linux/amd64'), { failure: 'build-failed' }), builder)))
    await origin.ingest.recordMany(envelopes)
    const started = Date.now()
    for (const e of envelopes) await origin.p2p.publish(TOPICS.claims, Buffer.from(e, 'utf8'))
    const held = async (d: Daemon): Promise<number> => (await d.store.claimsForCommit(REPO, commit)).length
    await waitFor('all 90 at both nodes', async () => await held(y) === 90 && await held(z) === 90, 60_000)
    const tookMs = Date.now() - started
    // The burst was over the rates: gossip alone dropped some, back-fill brought them.
    for (const d of [y, z]) expect(d.stats().gossip.ignored + d.p2p.stats().throttled).toBeGreaterThan(0)
    expect(y.stats().backfill.stored + z.stats().backfill.stored).toBeGreaterThan(0)
    expect(tookMs).toBeLessThan(60_000)
  }, 120_000)
})
