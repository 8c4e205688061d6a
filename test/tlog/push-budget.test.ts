import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { peerIdOf } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createPushBudget, createTransparencyLog, createWitness, type Witness } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { checkCosignature, decodeCheckpointMessage, parseCheckpoint, parseNote, witnessName } from '../../src/protocol/tlog/index.js'
import { waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'

describe('the push budget (token bucket)', () => {
  it('lets a round go when entries or time have earned it, and carries a burst over to its last checkpoint', () => {
    const b = createPushBudget({ floorMs: 60_000 })
    // 8 witnesses: a round costs 16. A node's first push after it starts is free, and the next
    // entry's checkpoint goes at once too (the bucket starts full).
    expect(b.take(10, 8, 0)).toBe(true)
    expect(b.tokens(8, 0)).toBe(16)
    expect(b.take(11, 8, 0)).toBe(true)
    // 4 entries earn 4 (and a second of time 16/60): not enough; the wait is what time must still earn.
    expect(b.take(15, 8, 1_000)).toBe(false)
    expect(b.waitMs(8, 1_000)).toBeCloseTo((16 - 5 - 16 / 60) * 60_000 / 16, -1)
    // The same entries do not earn twice; 11 more make the round.
    expect(b.take(15, 8, 1_000)).toBe(false)
    expect(b.take(26, 8, 1_000)).toBe(true)
    expect(b.tokens(8, 1_000)).toBeCloseTo(16 / 60, 6)
    // A burst fills the bucket up to two rounds: after its push one round is left, so the
    // checkpoint after its last entry (one entry more) goes at once.
    expect(b.take(126, 8, 2_000)).toBe(true)
    expect(b.take(127, 8, 2_000)).toBe(true)
    // Then a trickle: one entry waits for time, one round per floorMs at most.
    expect(b.take(128, 8, 3_000)).toBe(false)
    expect(b.take(128, 8, 3_000 + 60_000)).toBe(true)
    // Time alone fills one round at most: after an hour, one round, not sixty.
    expect(b.take(129, 8, 3_663_000)).toBe(true)
    expect(b.take(130, 8, 3_663_000)).toBe(false)
  })

  it('earns the same tokens by time whatever the round costs: a round to fewer witnesses comes sooner', () => {
    // 2 witnesses (a small network): a round costs 4; time earns 16 per minute, a round in 15 s.
    const b = createPushBudget({ floorMs: 60_000 })
    expect(b.take(1, 2, 0)).toBe(true)
    expect(b.take(5, 2, 0)).toBe(true)
    expect(b.take(6, 2, 0)).toBe(true)
    expect(b.take(7, 2, 0)).toBe(false)
    expect(b.waitMs(2, 0)).toBe(2 * 60_000 / 16)
    expect(b.take(7, 2, 7_500)).toBe(true)
  })

  it('refuses knobs that make no sense', () => {
    expect(() => createPushBudget({ floorMs: 0 })).toThrow(/floorMs/)
    expect(() => createPushBudget({ tokensPerEntry: -1 })).toThrow(/tokensPerEntry/)
    expect(() => createPushBudget({ floorTokens: 0 })).toThrow(/floorTokens/)
  })
})

// Real log and witness; the push between them is a direct call that records what was pushed.
describe('pushing the own checkpoints within the budget', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  it('holds back a checkpoint its entries have not paid for, supersedes it, and pushes the newest once time has earned the round', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-push-budget-'))
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const logId = generateIdentity()
    const witnessId = generateIdentity()
    const store = await createStore({ path: join(dir, 'store') })
    cleanup.push(async () => { await store.close() })
    const tlog = createTransparencyLog({ store, identity: logId }, { path: join(dir, 'tlog'), checkpointIntervalMs: 20 })
    const remote: Witness = createWitness({ identity: witnessId, publish: async () => {}, consistencyProof: async (_peer, _origin, oldSize, newSize) => await tlog.consistency(oldSize, newSize) }, { path: join(dir, 'remote') })
    await remote.start()
    cleanup.push(async () => { await remote.stop() })
    const pushed = new Map<number, number>() // size → when it was pushed
    const signed = new Map<number, number>() // size → when it was signed
    // A round to one witness costs 2; an entry earns a quarter of a token, time one round per 12 s.
    const floorMs = 12_000
    const own = createWitness({
      identity: logId,
      log: tlog,
      publish: async () => { throw new Error('nothing is gossiped when pushing') },
      consistencyProof: async () => { throw new Error('unused') },
      connected: () => [peerIdOf(witnessId.publicKey)],
      push: async (_peer, message) => {
        const size = decodeCheckpointMessage(message).checkpoint.size
        if (!pushed.has(size)) pushed.set(size, Date.now())
        const answer = await remote.pushed(message, peerIdOf(logId.publicKey))
        if (typeof answer === 'string') throw new Error(answer)
        return answer
      }
    }, { path: join(dir, 'own'), pushBudget: { floorMs, floorTokens: 2, tokensPerEntry: 0.25 } })
    await own.start()
    cleanup.push(async () => { await own.stop() })
    tlog.onCheckpoint(note => {
      signed.set(parseCheckpoint(parseNote(note).text).size, Date.now())
      void own.publishOwn(note)
    })
    await tlog.start()
    cleanup.push(async () => { await tlog.stop() })
    const cosignedAt = (size: number): boolean => {
      const note = parseNote(tlog.checkpoint() ?? '')
      return parseCheckpoint(note.text).size === size && note.signatures.some(s => checkCosignature(note.text, s, witnessName(witnessId.keyId), witnessId.publicKey) !== undefined)
    }

    // The start's checkpoint goes for free; the first entry after it goes at once (the bucket is full).
    await waitFor('size 0 pushed', () => pushed.has(0), 5_000)
    await putMessages(store, 0, 1)
    await tlog.sync()
    await waitFor('size 1 cosigned', () => cosignedAt(1), 10_000)
    // One more entry earns a quarter of a round: its checkpoint waits.
    await putMessages(store, 1, 2)
    await tlog.sync()
    await waitFor('size 2 waiting for the budget', () => own.stats().waitingSize === 2, 5_000)
    // Eight more pay for the round: the newest goes, the one that waited never does.
    await putMessages(store, 2, 10)
    await tlog.sync()
    await waitFor('size 10 cosigned', () => cosignedAt(10), 10_000)
    expect(pushed.has(2)).toBe(false)
    expect(own.stats().coalesced).toBeGreaterThanOrEqual(1)
    // A lone entry in a trickle waits for time to earn the rest of the round, then goes.
    await putMessages(store, 10, 11)
    await tlog.sync()
    await waitFor('size 11 cosigned', () => cosignedAt(11), 20_000)
    expect((pushed.get(11) ?? 0) - (signed.get(11) ?? Number.POSITIVE_INFINITY)).toBeGreaterThanOrEqual(200)
    expect(own.stats().pushRounds).toBe(pushed.size)
    // Served to a witness that fetches the own log's newest checkpoint: the one pushed last.
    const newest = own.newest(tlog.origin)
    expect(typeof newest === 'string' ? newest : decodeCheckpointMessage(newest).checkpoint.size).toBe(11)
  })
})
