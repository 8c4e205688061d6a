import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { peerIdOf } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog, createWitness, type Witness } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { checkCosignature, decodeCheckpointMessage, parseCheckpoint, parseNote, witnessName } from '../../src/protocol/tlog/index.js'
import { waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'

// A log's own checkpoints go to its witnesses directly (no gossip, no re-announcement timer):
// a push that gets no answer must be made again. Real log and witnesses; the push between them
// is a stand-in that loses the first request, as a reset stream or a busy witness would.
describe('pushing the own checkpoint to a witness', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  it('asks again, with a growing delay, until the witness cosigns', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-witness-push-'))
    cleanup.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const logId = generateIdentity()
    const witnessId = generateIdentity()
    const store = await createStore({}, { path: join(dir, 'store') })
    cleanup.push(async () => { await store.close() })
    const tlog = createTransparencyLog({ store, identity: logId }, { path: join(dir, 'tlog'), checkpointIntervalMs: 50 })
    const remote: Witness = createWitness({ identity: witnessId, publish: async () => {}, consistencyProof: async () => { throw new Error('no proof asked for a first checkpoint') } }, { path: join(dir, 'remote') })
    await remote.start()
    cleanup.push(async () => { await remote.stop() })
    // When each push of the checkpoint of size 4 was made; the first is lost.
    const attempts: number[] = []
    const own = createWitness({
      identity: logId,
      log: tlog,
      publish: async () => { throw new Error('nothing is gossiped when pushing') },
      consistencyProof: async () => { throw new Error('unused') },
      connected: () => [peerIdOf(witnessId.publicKey)],
      push: async (_peer, message) => {
        if (decodeCheckpointMessage(message).checkpoint.size === 4) {
          attempts.push(Date.now())
          if (attempts.length === 1) throw new Error('the stream was reset')
        }
        const answer = await remote.pushed(message, peerIdOf(logId.publicKey))
        if (typeof answer === 'string') throw new Error(answer)
        return answer
      }
    }, { path: join(dir, 'own'), retryMs: 100, maxRetryMs: 400 })
    await own.start()
    cleanup.push(async () => { await own.stop() })
    tlog.onCheckpoint(note => { void own.publishOwn(note) })
    await tlog.start()
    cleanup.push(async () => { await tlog.stop() })

    await putMessages(store, 0, 4)
    await tlog.sync()
    await waitFor('the witness\'s cosignature on size 4', () => {
      const note = parseNote(tlog.checkpoint() ?? '')
      return parseCheckpoint(note.text).size === 4 && note.signatures.some(s => checkCosignature(note.text, s, witnessName(witnessId.keyId), witnessId.publicKey) !== undefined)
    }, 10_000)
    expect(attempts.length).toBe(2)
    expect((attempts[1] ?? 0) - (attempts[0] ?? 0)).toBeGreaterThanOrEqual(90)
  })
})
