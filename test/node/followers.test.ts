import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createFollowers, type Follower } from '../../src/node/follow/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { StoredMessage } from '../../src/node/store/types.js'
import { putMessages } from '../tlog/messages.js'

describe('followers over the stored messages', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('feed each follower from its durable cursor, once each, across restarts and failures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-followers-'))
    dirs.push(dir)
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
    const dir = await mkdtemp(join(tmpdir(), 'neko-followers-'))
    dirs.push(dir)
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
})
