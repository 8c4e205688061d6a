import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { get as httpGet, type IncomingHttpHeaders } from 'node:http'
import { gunzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import { createStore } from '../../src/node/store/index.js'
import type { Store } from '../../src/node/store/types.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import { RECENT_CHECKPOINTS } from '../../src/node/tlog/log.js'
import type { TransparencyLog } from '../../src/node/tlog/types.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import {
  checkCosignature, cosignatureLine, decodeEntryBundle, entryLeafHash, leafHash, openNote, parseCheckpoint, parseEntry, parseNote, verifyConsistency, verifyInclusion, witnessName
} from '../../src/protocol/tlog/index.js'
import { goAvailable, goBuild } from '../helpers/go.js'
import { fakeId, messageId, putMessages } from './messages.js'

const run = promisify(execFile)

/** A GET with exactly the Accept-Encoding given (fetch would add its own), body undecoded. */
async function rawGet (url: string, acceptEncoding: string | undefined, ifNoneMatch?: string): Promise<{ status: number, headers: IncomingHttpHeaders, body: Buffer }> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (acceptEncoding !== undefined) headers['accept-encoding'] = acceptEncoding
    if (ifNoneMatch !== undefined) headers['if-none-match'] = ifNoneMatch
    httpGet(url, { headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }) })
    }).on('error', reject)
  })
}

describe('transparency log', () => {
  const identity = generateIdentity()
  let dir: string
  let store: Store
  let tlog: TransparencyLog
  let feed: FeedServer
  let url: string
  let oldNote: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-tlog-'))
    store = await createStore({}, { path: join(dir, 'store') })
    await putMessages(store, 0, 300)
    tlog = createTransparencyLog({ store, identity }, { path: join(dir, 'tlog'), checkpointIntervalMs: 10 })
    await tlog.start()
    oldNote = tlog.checkpoint() ?? ''
    await putMessages(store, 300, 700)
    await tlog.sync()
    await tlog.publishCheckpoint()
    feed = createFeedServer({ store, policy: trustNobodyPolicy(), tlog: { log: tlog } }, { host: '127.0.0.1', port: 0 })
    url = (await feed.start()).url
  })

  afterAll(async () => {
    await feed?.stop()
    await tlog?.stop()
    await store?.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('logs every stored message in cursor order and signs checkpoints over them', async () => {
    expect(tlog.size()).toBe(700)
    const old = parseCheckpoint(openNote(oldNote, tlog.origin, identity.publicKey).text)
    expect(old.size).toBe(300)
    const res = await fetch(`${url}/tlog/checkpoint`)
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    const cur = parseCheckpoint(openNote(await res.text(), tlog.origin, identity.publicKey).text)
    expect(cur.size).toBe(700)
    expect(cur.origin).toBe(`neko-rebuilder/log/${identity.keyId}`)
  })

  it('serves tiles and entry bundles as immutable resources that prove the checkpoint', async () => {
    const cur = parseCheckpoint(openNote(tlog.checkpoint() ?? '', tlog.origin, identity.publicKey).text)
    const bundle = await fetch(`${url}/tlog/tile/entries/002.p/188`)
    expect(bundle.status).toBe(200)
    expect(bundle.headers.get('cache-control')).toContain('immutable')
    const entries = decodeEntryBundle(Buffer.from(await bundle.arrayBuffer()))
    expect(entries).toHaveLength(188)
    expect(parseEntry(entries[0] as Buffer)).toEqual({ kind: 'announcement', id: messageId(512) })
    const tile = Buffer.from(await (await fetch(`${url}/tlog/tile/0/002.p/188`)).arrayBuffer())
    expect(tile.subarray(0, 32)).toEqual(leafHash(entries[0] as Buffer))
    expect((await fetch(`${url}/tlog/tile/0/002.p/189`)).status).toBe(404)
    expect((await fetch(`${url}/tlog/tile/0/002`)).status).toBe(404)
    expect((await fetch(`${url}/tlog/tile/0/0002`)).status).toBe(404)
    const level1 = Buffer.from(await (await fetch(`${url}/tlog/tile/1/000.p/2`)).arrayBuffer())
    expect(level1).toHaveLength(64)
    expect(cur.rootHash).toBeDefined()
  })

  it('serves entry bundles gzip-encoded to a client that accepts gzip, as C2SP tlog-tiles asks', async () => {
    const path = `${url}/tlog/tile/entries/002.p/188`
    const plain = await rawGet(path, undefined)
    expect(plain.headers['content-encoding']).toBeUndefined()
    expect(plain.headers.vary).toBe('Accept-Encoding')
    const zipped = await rawGet(path, 'br;q=1, gzip;q=0.8')
    expect(zipped.headers['content-encoding']).toBe('gzip')
    expect(zipped.headers.vary).toBe('Accept-Encoding')
    expect(zipped.body.byteLength).toBeLessThan(plain.body.byteLength / 2)
    expect(gunzipSync(zipped.body)).toEqual(plain.body)
    // Each encoding is its own representation: its own strong ETag, its own 304.
    expect(zipped.headers.etag).not.toBe(plain.headers.etag)
    expect((await rawGet(path, 'gzip', zipped.headers.etag)).status).toBe(304)
    expect((await rawGet(path, 'gzip', plain.headers.etag)).status).toBe(200)
    // gzip refused by weight, or only `*`: both as the header says.
    expect((await rawGet(path, 'gzip;q=0, identity')).headers['content-encoding']).toBeUndefined()
    expect((await rawGet(path, '*')).headers['content-encoding']).toBe('gzip')
    // Hash tiles are random bytes: never compressed.
    expect((await rawGet(`${url}/tlog/tile/0/000`, 'gzip')).headers['content-encoding']).toBeUndefined()
  })

  it('answers inclusion proofs by message id, and refuses an unknown id with 404', async () => {
    const res = await fetch(`${url}/tlog/inclusion?id=${messageId(421)}`)
    const a = await res.json() as { index: number, size: number, proof: string[], checkpoint: string }
    expect(a.index).toBe(421)
    const cp = parseCheckpoint(openNote(a.checkpoint, tlog.origin, identity.publicKey).text)
    verifyInclusion(a.index, a.size, entryLeafHash('announcement', messageId(421)), a.proof.map(p => Buffer.from(p, 'base64')), cp.rootHash)
    expect((await fetch(`${url}/tlog/inclusion?id=${fakeId(9999)}`)).status).toBe(404)
    expect((await fetch(`${url}/tlog/inclusion?id=nothex`)).status).toBe(400)
  })

  it('keeps entries, the checkpoint and older checkpoints\' cosignatures across a restart', async () => {
    const before = tlog.checkpoint()
    // A witness cosigns the older checkpoint (size 300) only; the log keeps that too.
    const witness = generateIdentity()
    const oldText = parseNote(oldNote).text
    const line = cosignatureLine(oldText, witnessName(witness.keyId), witness.privateKey, 1767225600)
    expect(await tlog.addCosignatures(oldText, [line])).toBe(1)
    expect(await tlog.addCosignatures(oldText, [line])).toBe(0)
    await feed.stop()
    await tlog.stop()
    await putMessages(store, 700, 710)
    tlog = createTransparencyLog({ store, identity }, { path: join(dir, 'tlog'), checkpointIntervalMs: 10 })
    await tlog.start()
    expect(tlog.size()).toBe(710)
    const cur = parseCheckpoint(openNote(tlog.checkpoint() ?? '', tlog.origin, identity.publicKey).text)
    expect(cur.size).toBe(710)
    const prev = parseCheckpoint(openNote(before ?? '', tlog.origin, identity.publicKey).text)
    const proof = await tlog.consistency(prev.size, cur.size)
    verifyConsistency(prev.size, cur.size, proof, prev.rootHash, cur.rootHash)
    feed = createFeedServer({ store, policy: trustNobodyPolicy(), tlog: { log: tlog } }, { host: '127.0.0.1', port: 0 })
    url = (await feed.start()).url
    const { items } = await (await fetch(`${url}/tlog/checkpoints`)).json() as { items: Array<{ size: number, note: string }> }
    expect(items.map(i => i.size)).toEqual([710, 700, 300])
    const kept = parseNote(items[2]?.note ?? '')
    expect(kept.text).toBe(oldText)
    expect(kept.signatures.map(sig => checkCosignature(oldText, sig, witnessName(witness.keyId), witness.publicKey))).toContain(1767225600)
    // The cosigned checkpoint is the one an inclusion proof of an old entry leads to.
    const inc = await (await fetch(`${url}/tlog/inclusion?id=${messageId(42)}`)).json() as { size: number, checkpoint: string }
    expect(inc.size).toBe(300)
    expect(inc.checkpoint).toBe(items[2]?.note)
  })

  it('keeps at most RECENT_CHECKPOINTS checkpoints, on disk as in memory', async () => {
    const s2 = await createStore({}, { path: join(dir, 'store-many') })
    let l2 = createTransparencyLog({ store: s2, identity }, { path: join(dir, 'tlog-many'), checkpointIntervalMs: 10 })
    await l2.start()
    for (let i = 0; i < RECENT_CHECKPOINTS + 5; i++) {
      await putMessages(s2, i, i + 1)
      await l2.publishCheckpoint()
    }
    expect(l2.checkpoints()).toHaveLength(RECENT_CHECKPOINTS)
    await l2.stop()
    l2 = createTransparencyLog({ store: s2, identity }, { path: join(dir, 'tlog-many') })
    await l2.start()
    const sizes = l2.checkpoints().map(c => c.size)
    expect(sizes).toHaveLength(RECENT_CHECKPOINTS)
    expect(sizes[0]).toBe(RECENT_CHECKPOINTS + 5)
    expect(sizes.at(-1)).toBe(6)
    await l2.stop()
    await s2.close()
  })

  it.runIf(goAvailable('tlog go interop'))('passes a checker built on Go\'s sumdb/note and sumdb/tlog', async () => {
    const bin = join(dir, 'checker')
    goBuild(join(import.meta.dirname, 'checker'), bin, join(dir, 'gocache'))
    const oldFile = join(dir, 'old-checkpoint')
    await writeFile(oldFile, oldNote)
    const index = 421
    const inc = await (await fetch(`${url}/tlog/inclusion?id=${messageId(index)}`)).json() as { proof: string[], size: number }
    const old = parseCheckpoint(openNote(oldNote, tlog.origin, identity.publicKey).text)
    // The node's proofs, as it serves them, must satisfy Go's checks too.
    const cons = (await tlog.consistency(old.size, inc.size)).map(h => Buffer.from(h).toString('base64'))
    const { stdout } = await run(bin, [`${url}/tlog/`, tlog.vkey, oldFile, String(index), inc.proof.join(','), cons.join(',')])
    const out = JSON.parse(stdout) as Record<string, unknown>
    expect(out).toMatchObject({ ok: true, size: 710, oldSize: 300, origin: tlog.origin, entry: `announcement ${messageId(index)}\n`, entryBundleGzip: true })
    // And a forged proof is refused by Go.
    const bad = [...inc.proof]
    bad[0] = Buffer.alloc(32).toString('base64')
    const failed = await run(bin, [`${url}/tlog/`, tlog.vkey, oldFile, String(index), bad.join(','), cons.join(',')]).catch((err: { stdout: string }) => err)
    expect(JSON.parse((failed as { stdout: string }).stdout)).toMatchObject({ failed: 'check record (node proof)' })
  })
})
