import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { peerIdOf } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog, createWitness, type TransparencyLog, type Witness, type WitnessInit } from '../../src/node/tlog/index.js'
import type { Store } from '../../src/node/store/types.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { checkCosignature, decodeCheckpointMessage, parseCheckpoint, parseNote, witnessName } from '../../src/protocol/tlog/index.js'
import { waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'

// A log's own checkpoints go to its witnesses directly (no gossip, no re-announcement timer).
// Real log and witnesses; the push between them is a direct call that sees each pushed size
// (and may lose the request, as a reset stream or a busy witness would).
describe('pushing the own checkpoint to a witness', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  interface Pushing { store: Store, tlog: TransparencyLog, own: Witness, witnessId: SigningIdentity, cosignedAt: (size: number) => boolean }
  /**
   * A log, its node's witness service pushing to one remote witness through `onPush` (which may
   * throw), and the log's checkpoints handed to it as signed. The witness is connected (so
   * known) while `reach.connected` holds.
   */
  async function pushing (init: Omit<WitnessInit, 'path'>, onPush: (size: number) => void, onSigned: (size: number) => void = () => {}, reach = { connected: true }): Promise<Pushing> {
    const dir = await mkdtemp(join(tmpdir(), 'neko-witness-push-'))
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const logId = generateIdentity()
    const witnessId = generateIdentity()
    const store = await createStore({}, { path: join(dir, 'store') })
    cleanup.push(async () => { await store.close() })
    const tlog = createTransparencyLog({ store, identity: logId }, { path: join(dir, 'tlog'), checkpointIntervalMs: 20 })
    const remote: Witness = createWitness({ identity: witnessId, publish: async () => {}, consistencyProof: async (_peer, _origin, oldSize, newSize) => await tlog.consistency(oldSize, newSize) }, { path: join(dir, 'remote') })
    await remote.start()
    cleanup.push(async () => { await remote.stop() })
    const own = createWitness({
      identity: logId,
      log: tlog,
      publish: async () => { throw new Error('nothing is gossiped when pushing') },
      consistencyProof: async () => { throw new Error('unused') },
      connected: () => reach.connected ? [peerIdOf(witnessId.publicKey)] : [],
      push: async (_peer, message) => {
        onPush(decodeCheckpointMessage(message).checkpoint.size)
        const answer = await remote.pushed(message, peerIdOf(logId.publicKey))
        if (typeof answer === 'string') throw new Error(answer)
        return answer
      }
    }, { path: join(dir, 'own'), ...init })
    await own.start()
    cleanup.push(async () => { await own.stop() })
    tlog.onCheckpoint(note => {
      onSigned(parseCheckpoint(parseNote(note).text).size)
      void own.publishOwn(note)
    })
    await tlog.start()
    cleanup.push(async () => { await tlog.stop() })
    const cosignedAt = (size: number): boolean => {
      const note = parseNote(tlog.checkpoint() ?? '')
      return parseCheckpoint(note.text).size === size && note.signatures.some(s => checkCosignature(note.text, s, witnessName(witnessId.keyId), witnessId.publicKey) !== undefined)
    }
    return { store, tlog, own, witnessId, cosignedAt }
  }

  it('asks again, with a growing delay, until the witness cosigns', async () => {
    // When each push of the checkpoint of size 4 was made; the first is lost.
    const attempts: number[] = []
    const { store, tlog, cosignedAt } = await pushing({ retryMs: 100, maxRetryMs: 400 }, (size) => {
      if (size !== 4) return
      attempts.push(Date.now())
      if (attempts.length === 1) throw new Error('the stream was reset')
    })
    await putMessages(store, 0, 4)
    await tlog.sync()
    await waitFor('the witness\'s cosignature on size 4', () => cosignedAt(4), 10_000)
    expect(attempts.length).toBe(2)
    expect((attempts[1] ?? 0) - (attempts[0] ?? 0)).toBeGreaterThanOrEqual(90)
  })

  it('holds back a checkpoint the push budget has not paid for, supersedes it, and pushes the newest once time has earned the round', async () => {
    const pushed = new Map<number, number>() // size → when it was first pushed
    const signed = new Map<number, number>() // size → when it was signed
    // A round to one witness costs 2; an entry earns a quarter of a token, time one round per 12 s.
    const { store, tlog, own, cosignedAt } = await pushing({ pushBudget: { floorMs: 12_000, floorTokens: 2, tokensPerEntry: 0.25 } }, (size) => {
      if (!pushed.has(size)) pushed.set(size, Date.now())
    }, (size) => { signed.set(size, Date.now()) })
    // The start's checkpoint goes for free; the first entry after it goes at once (the bucket is full).
    await waitFor('size 0 pushed', () => pushed.has(0), 5_000)
    await putMessages(store, 0, 1)
    await tlog.sync()
    await waitFor('size 1 cosigned', () => cosignedAt(1), 10_000)
    // One more entry earns a quarter of a round: its checkpoint waits.
    await putMessages(store, 1, 2)
    await tlog.sync()
    await waitFor('size 2 waiting for the budget', () => own.stats().waitingSize === 2, 5_000)
    // A witness that fetches the log's newest checkpoint (it met the node, or a push to it
    // failed) gets the one pushed last: the one waiting has not been paid for.
    const fetched = own.newest(tlog.origin)
    expect(typeof fetched === 'string' ? fetched : decodeCheckpointMessage(fetched).checkpoint.size).toBe(1)
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
    const newest = own.newest(tlog.origin)
    expect(typeof newest === 'string' ? newest : decodeCheckpointMessage(newest).checkpoint.size).toBe(11)
  })

  it('keeps a checkpoint signed while no witness is known, and pushes it when one is met', async () => {
    const pushed: number[] = []
    const reach = { connected: false }
    const { store, tlog, own, witnessId, cosignedAt } = await pushing({}, (size) => { pushed.push(size) }, () => {}, reach)
    await putMessages(store, 0, 3)
    await tlog.sync()
    await waitFor('size 3 waiting for a witness', () => own.stats().waitingSize === 3, 5_000)
    expect(pushed).toEqual([])
    // The witness connects: the node meets it, and the waiting checkpoint goes at once.
    reach.connected = true
    own.met(peerIdOf(witnessId.publicKey))
    await waitFor('size 3 cosigned', () => cosignedAt(3), 10_000)
    expect(pushed).toEqual([3])
  })
})
