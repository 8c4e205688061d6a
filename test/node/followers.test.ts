import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createFollowers, DuplicateFollowerError, type Follower } from '../../src/node/follow/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { StoredMessage } from '../../src/node/store/types.js'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { createMetrics } from '../../src/node/metrics.js'
import type { Envelope } from '../../src/protocol/dsse.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { putMessages } from '../tlog/messages.js'
import { COMMIT_1, announcement, claim, imageResult, makeKeys, put, target, testPolicy } from '../http/fixtures.js'
import { LOOPBACK, waitFor } from './helpers.js'

describe('followers over the stored messages', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })
  /** A directory of its own for one test's store, removed after the suite. */
  const tempDir = async (): Promise<string> => { const dir = await mkdtemp(join(tmpdir(), 'neko-followers-')); dirs.push(dir); return dir }

  it('feed each follower from its durable cursor, once each, across restarts and failures', async () => {
    const dir = await tempDir()
    let store = await createStore({}, { path: join(dir, 'store') })
    await putMessages(store, 0, 300)
    const seen: number[] = []
    let failNext = false
    const counting: Follower = {
      name: 'counting',
      async apply (page: StoredMessage[]) {
        if (failNext) { failNext = false; throw new Error('not now') }
        seen.push(...page.map(m => m.cursor))
      }
    }
    const claimsOnly: StoredMessage[] = []
    const claims: Follower = { name: 'claims', kinds: ['claim'], async apply (page) { claimsOnly.push(...page) } }
    let followers = createFollowers({ store, followers: [counting, claims] }, { pageSize: 64 })
    await followers.start()
    await followers.idle()
    // Every stored message, in order, in pages: nothing twice.
    expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i + 1))
    expect(claimsOnly).toEqual([])
    expect(followers.lag()).toEqual({ counting: 0, claims: 0 })

    // A follower that fails reads the same messages again after the next stored one.
    failNext = true
    await putMessages(store, 300, 310)
    followers.notify()
    await followers.idle()
    expect(seen).toHaveLength(300)
    expect(followers.lag().counting).toBe(10)
    expect(followers.lag().claims).toBe(0)
    await putMessages(store, 310, 311)
    followers.notify()
    await followers.idle()
    expect(seen).toEqual(Array.from({ length: 311 }, (_, i) => i + 1))

    // Stopped, more is stored, the process restarts: the cursors were durable.
    await followers.stop()
    await putMessages(store, 311, 320)
    await store.close()
    store = await createStore({}, { path: join(dir, 'store') })
    followers = createFollowers({ store, followers: [counting, claims] }, { pageSize: 64 })
    expect(followers.lag()).toEqual({ counting: 320, claims: 320 })
    await followers.start()
    await followers.idle()
    expect(seen).toEqual(Array.from({ length: 320 }, (_, i) => i + 1))
    expect(followers.lag()).toEqual({ counting: 0, claims: 0 })
    await followers.stop()
    await store.close()
  })

  it('reads the cursor of a follower that keeps its own', async () => {
    const dir = await tempDir()
    const store = await createStore({}, { path: join(dir, 'store') })
    await putMessages(store, 0, 20)
    let own = 5
    const applied: number[] = []
    const followers = createFollowers({ store, followers: [{ name: 'own', cursor: () => own, async apply (page) { applied.push(page[0]!.cursor); own = page.at(-1)!.cursor } }] })
    expect(followers.lag()).toEqual({ own: 15 })
    await followers.start()
    await followers.idle()
    expect(applied).toEqual([6])
    expect(followers.lag()).toEqual({ own: 0 })
    expect(await store.getState('follower-cursor:own')).toBeUndefined()
    await followers.stop()
    await store.close()
  })

  it('feeds a follower added while it runs from that follower\'s saved cursor, and refuses a second one of one name', async () => {
    const dir = await tempDir()
    const store = await createStore({}, { path: join(dir, 'store') })
    await putMessages(store, 0, 30)
    await store.setState('follower-cursor:late', 12)
    const seen: number[] = []
    const late: Follower = { name: 'late', async apply (page) { seen.push(...page.map(m => m.cursor)) } }
    const followers = createFollowers({ store, followers: [] })
    await followers.start()
    await followers.add(late)
    await followers.idle()
    expect(seen).toEqual(Array.from({ length: 18 }, (_, i) => i + 13))
    expect(followers.lag()).toEqual({ late: 0 })
    await expect(followers.add({ name: 'late', async apply () {} })).rejects.toBeInstanceOf(DuplicateFollowerError)
    await followers.stop()
    await store.close()
  })
})

describe('the consensus view of a node as a follower', () => {
  let dir: string
  afterAll(async () => { if (dir != null) await rm(dir, { recursive: true, force: true }) })

  it('takes in a claim stored while the node was stopped from its cursor, with its lag in stats and metrics', async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-consensus-follow-'))
    const keys = makeKeys()
    const policy = testPolicy(keys)
    const identity = generateIdentity()
    const start = async (): Promise<Daemon> => {
      const store = await createStore({}, { path: join(dir, 'store') })
      const daemon = await createDaemon({ identity, store, policy, metrics: createMetrics() }, { listen: [LOOPBACK], mdns: false, http: { host: '127.0.0.1', port: 0 } })
      await daemon.start()
      return daemon
    }
    const verdict = async (d: Daemon): Promise<{ status: string }> => await (await fetch(`${d.httpUrl()!}/api/v1/consensus/c1`)).json() as { status: string }
    const builderClaim = (i: number): Envelope => signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'c1'), { result: imageResult('c1 image') }), keys.builders[i]!)

    const first = await start()
    try {
      await first.announce(signAnnouncement(announcement('c1', COMMIT_1, [['base', 'linux/amd64']]), keys.maintainer))
      await first.ingest.record(builderClaim(0))
      expect((await verdict(first)).status).toBe('pending')
    } finally {
      await first.stop()
    }

    // While the node is stopped, a second builder's claim reaches its store.
    const offline = await createStore({}, { path: join(dir, 'store') })
    await put(offline, builderClaim(1))
    const head = offline.lastCursor()
    await offline.close()

    const second = await start()
    try {
      // Before any request: the follower loop loaded the view and read on to the newest message.
      await waitFor('the consensus view caught up', () => second.stats().followers.consensus === 0)
      expect(second.stats().followers).toHaveProperty('consensus', 0)
      expect(second.store.lastCursor()).toBe(head)
      expect(await (await fetch(`${second.httpUrl()!}/metrics`)).text()).toMatch(/^neko_follower_lag\{follower="consensus"\} 0$/m)
      expect((await verdict(second)).status).toBe('reproducible')
      // And on, as messages are stored.
      await second.ingest.record(builderClaim(2))
      await waitFor('the third claim taken in', () => second.stats().followers.consensus === 0)
      const after = await (await fetch(`${second.httpUrl()!}/api/v1/consensus/c1`)).json() as { targets: Array<{ agreeing: unknown[] }> }
      expect(after.targets[0]!.agreeing).toHaveLength(3)
    } finally {
      await second.stop()
    }
  })
})
