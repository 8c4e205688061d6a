import { createPublicKey } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LogUnreachableError, TlogProofError } from '../../src/node/p2p/index.js'
import { createWitness, type Witness } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { encodeCheckpointMessage, formatCheckpoint, formatVerifierKey, logOrigin, signNote } from '../../src/protocol/tlog/index.js'

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
})
