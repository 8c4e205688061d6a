import { execFile } from 'node:child_process'
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { promisify } from 'node:util'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { createStore } from '../../src/node/store/index.js'
import { createHttpWitness, createWitness, createWitnessPusher, filterWitnessed, witnessedLogKeys } from '../../src/node/tlog/index.js'
import { generateIdentity, keyIdOf } from '../../src/protocol/keys.js'
import {
  ALG_COSIGNATURE_V1, ALG_ED25519, checkCosignature, keyHash, rawOf, cosignersOf, entryLeafHash, formatAddCheckpoint, formatCheckpoint, formatVerifierKey, MemoryTree,
  parseCheckpoint, parseNote, signNote, TLOG_SIZE_CONTENT_TYPE, witnessName
} from '../../src/protocol/tlog/index.js'
import { goAvailable, goBuild } from '../helpers/go.js'
import { LOOPBACK, policyFor, waitFor } from '../node/helpers.js'
import { messageId, putMessages } from './messages.js'

/** A log outside the network, named by its verifier key in the witness's configuration. */
const ORIGIN = 'example.org/neko-network-log'
/** The log of the Go client (test/tlog/witness-client). */
const GO_ORIGIN = 'example.org/go-client-log'

function treeOf (n: number, salt = ''): MemoryTree {
  const t = new MemoryTree()
  for (let i = 0; i < n; i++) t.append(entryLeafHash('claim', createHash('sha256').update(`${salt}${i}`).digest('hex')))
  return t
}

describe('C2SP tlog-witness over HTTP', () => {
  const logKey = generateKeyPairSync('ed25519')
  const logVkey = formatVerifierKey(ORIGIN, createPublicKey(logKey.privateKey))
  const goKey = generateKeyPairSync('ed25519')
  const goVkey = formatVerifierKey(GO_ORIGIN, goKey.publicKey)
  const witnessId = generateIdentity()
  const logNodeId = generateIdentity()
  const daemons: Daemon[] = []
  let dir: string
  let witness: Daemon
  let url: string
  const name = witnessName(witnessId.keyId)
  const witnessVkey = formatVerifierKey(name, witnessId.publicKey, ALG_COSIGNATURE_V1)

  const note = (t: MemoryTree, size: number, key = logKey.privateKey, origin = ORIGIN): string =>
    signNote(formatCheckpoint({ origin, size, rootHash: t.root(size) }), origin, key)
  const post = async (body: Uint8Array | string): Promise<{ status: number, type: string | null, text: string, reason: string | null }> => {
    const res = await fetch(`${url}/tlog/add-checkpoint`, { method: 'POST', body: typeof body === 'string' ? body : Buffer.from(body).toString('utf8') })
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text(), reason: res.headers.get('neko-reason') }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-http-witness-'))
    const store = await createStore({}, { path: join(dir, 'w', 'store') })
    // The witness's policy names the log node's key as a builder: its log is witnessed too.
    witness = await createDaemon({ identity: witnessId, store, policy: policyFor([logNodeId], []) }, {
      listen: [LOOPBACK], bootstrap: [], mdns: false,
      tlog: { path: join(dir, 'w', 'tlog'), checkpointIntervalMs: 50, witnessLogs: [logVkey, goVkey] },
      http: { host: '127.0.0.1', port: 0 }
    })
    await witness.start()
    daemons.push(witness)
    url = witness.httpUrl() ?? ''
  })

  afterAll(async () => {
    for (const d of daemons.reverse()) await d.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('answers add-checkpoint with the codes of the spec, cosigning only consistent growth', async () => {
    const tree = treeOf(40)
    // Unknown origin, and a known origin signed by another key.
    const stranger = generateKeyPairSync('ed25519')
    expect((await post(formatAddCheckpoint(0, [], note(tree, 4, stranger.privateKey, 'example.org/other')))).status).toBe(404)
    const forbidden = await post(formatAddCheckpoint(0, [], note(tree, 4, stranger.privateKey)))
    expect(forbidden.status).toBe(403)
    expect(forbidden.text).toMatch(/no valid signature by a key this witness trusts/)
    // Never cosigned: the witness names size 0.
    const conflict = await post(formatAddCheckpoint(3, [], note(tree, 4)))
    expect(conflict).toMatchObject({ status: 409, type: TLOG_SIZE_CONTENT_TYPE, text: '0\n' })
    expect(conflict.reason).toMatch(/last cosigned the tree of size 0/)
    // Malformed bodies and an old size beyond the checkpoint's.
    expect((await post('old 01\n\n' + note(tree, 4))).status).toBe(400)
    expect((await post('old 0\nnot-a-hash\n\n' + note(tree, 4))).status).toBe(400)
    expect((await post(formatAddCheckpoint(5, [], note(tree, 4)))).status).toBe(400)
    // First sight: trusted, cosigned with a timestamped cosignature/v1 line.
    const first = await post(formatAddCheckpoint(0, [], note(tree, 4)))
    expect(first.status).toBe(200)
    const text = parseNote(note(tree, 4)).text
    const sigs = parseNote(`${text}\n${first.text}`).signatures
    expect(sigs).toHaveLength(1)
    const ts = checkCosignature(text, sigs[0] as NonNullable<typeof sigs[0]>, name, witnessId.publicKey)
    expect(ts).toBeGreaterThan(Date.now() / 1000 - 60)
    // A proof that does not prove: 422; the right one (RFC 6962, from a power-of-two size): 200.
    const good = tree.consistencyProof(4, 21)
    const bad = good.map((h, i) => i === 0 ? Buffer.alloc(32, 9) : h)
    const refused = await post(formatAddCheckpoint(4, bad, note(tree, 21)))
    expect(refused.status).toBe(422)
    expect(refused.text).toMatch(/does not lead/)
    expect((await post(formatAddCheckpoint(4, good, note(tree, 21)))).status).toBe(200)
    // Another tree of the size cosigned: 409, and the witness keeps the split view.
    const forked = treeOf(21, 'fork')
    expect(await post(formatAddCheckpoint(21, [], note(forked, 21)))).toMatchObject({ status: 409, text: '21\n' })
    // Once it holds a split view, the witness cosigns nothing more of the log.
    const next = await post(formatAddCheckpoint(21, tree.consistencyProof(21, 40), note(tree, 40)))
    expect(next.status).toBe(409)
    expect(witness.stats().tlog?.witness.splitViews).toContain(keyIdOf(createPublicKey(logKey.privateKey)))
  })

  it.runIf(goAvailable('tlog-witness go client'))('serves a client built on Go\'s sumdb/note and sumdb/tlog, with Go\'s RFC 6962 proofs', async () => {
    const bin = join(dir, 'witness-client')
    goBuild(join(import.meta.dirname, 'witness-client'), bin, join(dir, 'gocache'))
    // The signer key as Go's note.NewSigner reads it: PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed).
    const seed = Buffer.from(goKey.privateKey.export({ format: 'jwk' }).d ?? '', 'base64url')
    const hash = keyHash(GO_ORIGIN, ALG_ED25519, rawOf(goKey.publicKey)).toString(16).padStart(8, '0')
    const skey = `PRIVATE+KEY+${GO_ORIGIN}+${hash}+${Buffer.concat([Buffer.from([ALG_ED25519]), seed]).toString('base64')}`
    const { stdout } = await promisify(execFile)(bin, [`${url}/tlog/add-checkpoint`, skey])
    const steps = stdout.trim().split('\n').map(l => JSON.parse(l) as { step: string, status: number, type: string, body: string, text: string })
    expect(steps.map(s => [s.step, s.status])).toEqual([['first', 200], ['stale', 409], ['grow 5 to 8', 200], ['grow 8 to 13', 200], ['bad proof', 422], ['grow 13 to 30', 200]])
    expect(steps[1]).toMatchObject({ type: TLOG_SIZE_CONTENT_TYPE, body: '5\n' })
    for (const s of steps.filter(s => s.status === 200)) {
      const sigs = parseNote(`${s.text}\n${s.body}`).signatures
      expect(sigs.map(sig => checkCosignature(s.text, sig, name, witnessId.publicKey))).toEqual([expect.any(Number)])
    }
  })

  it('limits requests per client before parsing and per origin before the proof, with 429 and a reason', async () => {
    const w = createWitness({ identity: generateIdentity(), publish: async () => {}, consistencyProof: async () => [] }, { path: join(dir, 'rate-witness') })
    await w.start()
    try {
      const http = createHttpWitness({ witness: w, trustedKeys: witnessedLogKeys(new Map(), [logVkey]) }, { perClient: { perMinute: 1, burst: 3 }, perOrigin: { perMinute: 1, burst: 2 } })
      const tree = treeOf(3)
      const body = formatAddCheckpoint(0, [], note(tree, 3))
      const a = [await http.addCheckpoint(body, 'a'), await http.addCheckpoint(body, 'b'), await http.addCheckpoint(body, 'c')]
      expect(a.map(r => r.status)).toEqual([200, 409, 429])
      expect(a[2]?.body).toMatch(/too many add-checkpoint requests for example.org\/neko-network-log/)
      // Garbage from one address uses up its own allowance only.
      const junk = [1, 2, 3, 4].map(async () => await http.addCheckpoint(Buffer.from('junk'), 'd'))
      expect((await Promise.all(junk)).map(r => r.status)).toEqual([400, 400, 400, 429])
      expect((await http.addCheckpoint(Buffer.from('junk'), 'e')).status).toBe(400)
    } finally {
      await w.stop()
    }
  })

  it('refuses oversized bodies before reading them', async () => {
    const res = await post('old 0\n' + 'A'.repeat(100_000))
    expect(res.status).toBe(413)
  })

  it('a node pushes its checkpoints to the witness, resending from the size a 409 names; the cosignatures count like a node witness\'s', async () => {
    const store = await createStore({}, { path: join(dir, 'l', 'store') })
    const logNode = await createDaemon({ identity: logNodeId, store, policy: trustNobodyPolicy() }, {
      listen: [LOOPBACK], bootstrap: [], mdns: false,
      tlog: { path: join(dir, 'l', 'tlog'), checkpointIntervalMs: 50, witnessUrls: [{ url: `${url}/tlog`, vkey: witnessVkey }], witnessPushIntervalMs: 50 },
      http: { host: '127.0.0.1', port: 0 }
    })
    await logNode.start()
    daemons.push(logNode)
    const cosignedAt = (size: number): boolean => {
      const n = parseNote(logNode.tlog?.checkpoint() ?? '')
      return parseCheckpoint(n.text).size === size && cosignersOf(n, new Map([[witnessId.keyId, witnessId]])).length === 1
    }
    await putMessages(logNode.store, 0, 13)
    await logNode.tlog?.sync()
    await waitFor('the witness\'s cosignature on size 13', () => cosignedAt(13), 20_000)
    await putMessages(logNode.store, 13, 50)
    await logNode.tlog?.sync()
    await waitFor('the witness\'s cosignature on size 50', () => cosignedAt(50), 20_000)
    expect(logNode.stats().tlog?.pushed).toEqual([expect.objectContaining({ name, cosignedSize: 50 })])

    // A pusher that does not know what the witness cosigned starts from 0, gets 409 "50" and
    // sends the proof from 50.
    await putMessages(logNode.store, 50, 64)
    await logNode.tlog?.sync()
    await waitFor('size 64 signed', () => logNode.tlog?.checkpointSize() === 64)
    const fresh = createWitnessPusher({ log: logNode.tlog as NonNullable<Daemon['tlog']> }, { witnesses: [{ url: `${url}/tlog`, vkey: witnessVkey }], minIntervalMs: 60_000 })
    await fresh.pushNow()
    expect(fresh.status()).toEqual([expect.objectContaining({ cosignedSize: 64, pushed: 1 })])
    expect(fresh.status()[0]?.lastError).toBeUndefined()
    expect(cosignedAt(64)).toBe(true)

    // A reader's policy naming the witness counts its cosignatures.
    const messages = (await logNode.store.messagesSince(0, 100)).items
    const kept = await filterWitnessed(logNode.httpUrl() ?? '', messages, { threshold: 1, keys: new Map([[witnessId.keyId, { name: 'w', publicKey: witnessId.publicKey }]]) })
    expect(kept.kept).toHaveLength(64)
    expect(kept.kept.map(m => m.id)).toContain(messageId(63))
  })
})
