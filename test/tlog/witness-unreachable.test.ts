import { createHash, createPublicKey } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/node/logger.js'
import { LogUnreachableError, peerIdOf, TlogProofError } from '../../src/node/p2p/index.js'
import { createWitness, type Witness } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { decodeCheckpointMessage, encodeCheckpointMessage, entryLeafHash, formatCheckpoint, formatVerifierKey, logOrigin, MemoryTree, signNote } from '../../src/protocol/tlog/index.js'
import { waitFor } from '../node/helpers.js'

// Each witness here gets its consistency proofs and checkpoints from stand-ins for the log's
// node; test/tlog/witness-burst.test.ts runs the same on real nodes.
describe('a witness that cannot reach a log', () => {
  const logId = generateIdentity()
  const origin = logOrigin(logId.keyId)
  const vkey = formatVerifierKey(origin, createPublicKey(logId.privateKey))
  const checkpoint = (size: number): Buffer => encodeCheckpointMessage(
    signNote(formatCheckpoint({ origin, size, rootHash: Buffer.alloc(32, size) }), origin, logId.privateKey), [vkey])
  let dir: string
  let witness: Witness | undefined

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-witness-unreachable-')) })
  afterEach(async () => {
    await witness?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  async function witnessWith (failure: Error): Promise<{ witness: Witness, published: Uint8Array[] }> {
    const published: Uint8Array[] = []
    const w = createWitness({
      identity: generateIdentity(),
      publish: async (data) => { published.push(data) },
      consistencyProof: async () => { throw failure }
    }, { path: join(dir, 'witness') })
    await w.start()
    witness = w
    for (const size of [1, 2]) {
      const data = checkpoint(size)
      const checked = w.validate(data)
      expect(checked.verdict).toBe('accept')
      await w.receive(data, checked.verdict === 'accept' ? checked.checkpoint : undefined)
    }
    return { witness: w, published }
  }

  it('cosigns nothing it could not prove and does not call the log unresponsive when it knows no address for it', async () => {
    const { witness: w, published } = await witnessWith(new LogUnreachableError('no address known'))
    // The first checkpoint is trusted on first sight and cosigned; the second needed a proof.
    expect(published).toHaveLength(1)
    expect(w.unresponsive()).toEqual([])
  })

  it('reports a log that it reached and that gave no proof', async () => {
    const { witness: w, published } = await witnessWith(new TlogProofError('the log refused: busy'))
    expect(published).toHaveLength(1)
    expect(w.unresponsive().map(u => [u.origin, u.pendingSize, u.lastError])).toEqual([[origin, 2, 'the log refused: busy']])
  })

  it('counts a log that proves its growth over HTTP (C2SP add-checkpoint) as answering again', async () => {
    const tree = new MemoryTree()
    for (let i = 0; i < 3; i++) tree.append(entryLeafHash('claim', createHash('sha256').update(`h${i}`).digest('hex')))
    const real = (size: number): Buffer => encodeCheckpointMessage(
      signNote(formatCheckpoint({ origin, size, rootHash: tree.root(size) }), origin, logId.privateKey), [vkey])
    const w = createWitness({ identity: generateIdentity(), publish: async () => {}, consistencyProof: async () => { throw new TlogProofError('the log refused: busy') } }, { path: join(dir, 'witness') })
    await w.start()
    witness = w
    for (const size of [1, 2]) await w.receive(real(size))
    expect(w.unresponsive()).toHaveLength(1)
    const c = decodeCheckpointMessage(real(3))
    const answer = await w.addCheckpoint({ note: c.note, text: c.text, checkpoint: c.checkpoint, logKeyId: c.logKeyId }, 1, tree.consistencyProof(1, 3))
    expect(answer.status).toBe(200)
    // The proof it asked for over libp2p came another way: the log answers, and its state is gone from disk too.
    expect(w.unresponsive()).toEqual([])
    await w.stop()
    const again = createWitness({ identity: generateIdentity(), publish: async () => {}, consistencyProof: async () => { throw new Error('unused') } }, { path: join(dir, 'witness') })
    await again.start()
    witness = again
    expect(again.unresponsive()).toEqual([])
  })
})

describe('a witness behind on a log', () => {
  const logId = generateIdentity()
  const origin = logOrigin(logId.keyId)
  const vkey = formatVerifierKey(origin, createPublicKey(logId.privateKey))
  const logPeer = peerIdOf(logId.publicKey)
  const tree = new MemoryTree()
  for (let i = 0; i < 5; i++) tree.append(entryLeafHash('claim', createHash('sha256').update(`m${i}`).digest('hex')))
  /** The log's signed checkpoint of its first `size` entries, as gossiped. */
  const checkpoint = (size: number): Buffer => encodeCheckpointMessage(
    signNote(formatCheckpoint({ origin, size, rootHash: Buffer.from(tree.root(size)) }), origin, logId.privateKey), [vkey])
  let dir: string
  let witness: Witness | undefined

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-witness-behind-')) })
  afterEach(async () => {
    await witness?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** A witness whose proof requests fail `failures` times, then get the log's proof; `newest` is what the log's node answers a fetch with. */
  async function start (proofFailure: Error | undefined, newest: () => Buffer): Promise<{ witness: Witness, published: Uint8Array[], fetched: Array<[string, string]>, records: Array<Record<string, unknown>> }> {
    const published: Uint8Array[] = []
    const fetched: Array<[string, string]> = []
    const records: Array<Record<string, unknown>> = []
    const sink = new Writable({ write (chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l !== '') records.push(JSON.parse(l) as Record<string, unknown>); done() } })
    let failing = proofFailure
    const w = createWitness({
      logger: createLogger({ level: 'info', format: 'json', destination: sink }),
      identity: generateIdentity(),
      publish: async (data) => { published.push(data) },
      consistencyProof: async (_peer, _origin, oldSize, newSize) => {
        const f = failing
        failing = undefined
        if (f !== undefined) throw f
        return tree.consistencyProof(oldSize, newSize)
      },
      checkpoint: async (peer, o) => { fetched.push([peer, o]); return newest() }
    }, { path: join(dir, 'witness'), refetchMs: 50, retryMs: 100, maxRetryMs: 400 })
    await w.start()
    witness = w
    return { witness: w, published, fetched, records }
  }

  async function deliver (w: Witness, data: Buffer): Promise<void> {
    const checked = w.validate(data)
    expect(checked.verdict).toBe('accept')
    await w.receive(data, checked.verdict === 'accept' ? checked.checkpoint : undefined)
  }

  const states = (records: Array<Record<string, unknown>>): unknown[] => records
    .filter(r => typeof r.msg === 'string' && /^witness (behind on|caught up with) a log/.test(r.msg))
    .map(r => [r.level, r.msg, r.origin, r.cosignedSize, r.seenSize, r.reason])

  it('says why it is behind, fetches the log\'s newest checkpoint again, and says once it has caught up', async () => {
    const { witness: w, published, fetched, records } = await start(new TlogProofError('the log refused: busy'), () => checkpoint(4))
    await deliver(w, checkpoint(1))
    await deliver(w, checkpoint(3))
    expect(published).toHaveLength(1)
    expect(w.behind()).toEqual([{ origin, logKeyId: logId.keyId, cosignedSize: 1, seenSize: 3, reason: 'proof refused', since: expect.stringMatching(/^\d{4}-/) as unknown }])
    expect(w.stats().behind).toEqual(w.behind())
    // No newer checkpoint comes by gossip: the witness fetches the newest itself, and it is proven.
    await waitFor('cosigned after the fetch', () => published.length === 2 && w.behind().length === 0, 5000)
    expect(fetched[0]).toEqual([logPeer, origin])
    expect(decodeCheckpointMessage(published[1] as Uint8Array).checkpoint.size).toBe(4)
    expect(w.unresponsive()).toEqual([])
    expect(states(records)).toEqual([
      [30, 'witness behind on a log (proof refused)', origin, 1, 3, 'proof refused'],
      [30, 'witness caught up with a log', origin, 4, undefined, undefined]
    ])
    // It serves its newest cosignature of the log to a node that asks.
    const served = w.newest(origin)
    expect(typeof served).not.toBe('string')
    const c = decodeCheckpointMessage(served as Uint8Array)
    expect([c.checkpoint.size, c.cosignatures.map(s => s.name)]).toEqual([4, [w.name]])
    expect(w.newest(logOrigin('0'.repeat(64)))).toMatch(/has cosigned no checkpoint/)
  })

  it('fetches again soon what a throttled message from the log\'s node may have carried', async () => {
    const { witness: w, published, fetched, records } = await start(undefined, () => checkpoint(5))
    await deliver(w, checkpoint(2))
    w.throttled(logPeer)
    w.throttled(logPeer)
    await waitFor('the newest checkpoint cosigned', () => published.length === 2 && w.behind().length === 0, 5000)
    // One fetch for the two throttled messages.
    expect(fetched).toEqual([[logPeer, origin]])
    expect(decodeCheckpointMessage(published[1] as Uint8Array).checkpoint.size).toBe(5)
    expect(states(records)).toEqual([
      [30, 'witness behind on a log (throttled)', origin, 2, 5, 'throttled'],
      [30, 'witness caught up with a log', origin, 5, undefined, undefined]
    ])
    // A throttled message that hid nothing newer: fetched, and nothing said.
    w.throttled(logPeer)
    await waitFor('fetched again', () => fetched.length === 2, 5000)
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(states(records)).toHaveLength(2)
    expect(w.behind()).toEqual([])
    // A peer whose log it does not know yet: it asks for that log's newest checkpoint (here the
    // peer answers with another log's: refused, and nothing reported).
    const stranger = generateIdentity()
    w.throttled(peerIdOf(stranger.publicKey))
    await waitFor('the stranger asked', () => fetched.length === 3, 5000)
    expect(fetched[2]).toEqual([peerIdOf(stranger.publicKey), logOrigin(stranger.keyId)])
    await new Promise(resolve => setTimeout(resolve, 100))
    expect([w.behind(), w.stats().logs, states(records).length]).toEqual([[], 1, 2])
  })

  it('lists an unreachable log as behind, and keeps trying with a growing delay', async () => {
    const { witness: w, fetched } = await start(new LogUnreachableError('no address known'), () => { throw new LogUnreachableError('no address known') })
    await deliver(w, checkpoint(1))
    await deliver(w, checkpoint(2))
    expect(w.behind().map(b => [b.reason, b.cosignedSize, b.seenSize])).toEqual([['unreachable', 1, 2]])
    expect(w.unresponsive()).toEqual([])
    // 100, 200, 400, 400 ms apart: about four fetches in the first 1.3 s, not one per tick.
    await new Promise(resolve => setTimeout(resolve, 1300))
    expect(fetched.length).toBeGreaterThanOrEqual(2)
    expect(fetched.length).toBeLessThanOrEqual(5)
  })
})

describe('a fork that arrives while the witness is busy with the log', () => {
  it('is flagged although a copy of the honest tree of the same size arrives after it', async () => {
    const logId = generateIdentity()
    const origin = logOrigin(logId.keyId)
    const vkey = formatVerifierKey(origin, createPublicKey(logId.privateKey))
    const tree = new MemoryTree()
    for (let i = 0; i < 4; i++) tree.append(entryLeafHash('claim', createHash('sha256').update(`m${i}`).digest('hex')))
    const signed = (size: number, root: Uint8Array): Buffer => encodeCheckpointMessage(signNote(formatCheckpoint({ origin, size, rootHash: Buffer.from(root) }), origin, logId.privateKey), [vkey])
    const dir = await mkdtemp(join(tmpdir(), 'neko-witness-fork-'))
    let release: () => void = () => {}
    let asked = false
    const gate = new Promise<void>(resolve => { release = () => { resolve() } })
    const w = createWitness({
      identity: generateIdentity(),
      publish: async () => {},
      consistencyProof: async (_peer, _origin, oldSize, newSize) => {
        asked = true
        await gate
        return tree.consistencyProof(oldSize, newSize)
      }
    }, { path: join(dir, 'witness') })
    await w.start()
    try {
      const deliver = async (data: Buffer): Promise<void> => {
        const checked = w.validate(data)
        await w.receive(data, checked.verdict === 'accept' ? checked.checkpoint : undefined)
      }
      await deliver(signed(2, tree.root(2)))
      // The honest tree of 4 is being proven when the forged one and another honest copy arrive.
      const first = deliver(signed(4, tree.root(4)))
      await waitFor('the proof asked for', () => asked)
      await deliver(signed(4, Buffer.alloc(32, 7)))
      await deliver(signed(4, tree.root(4)))
      release()
      await first
      expect((await w.splitViews()).map(s => s.origin)).toEqual([origin])
    } finally {
      await w.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
