import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createNetworkLog } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import {
  ALG_COSIGNATURE_V1, checkCosignature, decodeEntryBundle, formatVerifierKey, leafHash, MemoryTree, openNote, parseCheckpoint, parseNote,
  tilePath, verifyConsistency, witnessName
} from '../../src/protocol/tlog/index.js'
import { announcement, claim, COMMIT_1, imageResult, put, target } from '../http/fixtures.js'
import { goAvailable, goBuild } from '../helpers/go.js'
import { LOOPBACK, policyFor, waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'

const ORIGIN = 'example.org/neko-rebuilder/network-log'

describe('a network log the public can witness', () => {
  const netId = generateIdentity()
  const logNodeId = generateIdentity()
  const witnessId = generateIdentity()
  const maintainer = generateIdentity()
  const other = generateIdentity()
  const netVkey = formatVerifierKey(ORIGIN, netId.publicKey)
  const witnessVkey = formatVerifierKey(witnessName(witnessId.keyId), witnessId.publicKey, ALG_COSIGNATURE_V1)
  const daemons: Daemon[] = []
  let dir: string
  let net: Daemon
  let logNode: Daemon
  let firstNote = ''

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-network-log-'))
    const start = async (name: string, identity: typeof netId, opts: Parameters<typeof createDaemon>[1], policy = trustNobodyPolicy()): Promise<Daemon> => {
      const d = await createDaemon({ identity, store: await createStore({}, { path: join(dir, name, 'store') }), policy }, opts)
      await d.start()
      daemons.push(d)
      return d
    }
    // A public witness that knows the network log's key (and nothing of the network).
    const witness = await start('w', witnessId, { listen: [LOOPBACK], bootstrap: [], mdns: false, tlog: { path: join(dir, 'w', 'tlog'), witnessLogs: [netVkey] }, http: { host: '127.0.0.1', port: 0 } })
    net = await start('net', netId, {
      listen: [LOOPBACK], bootstrap: [], mdns: false, gossip: { heartbeatIntervalMs: 100 },
      tlog: { path: join(dir, 'net', 'tlog'), checkpointIntervalMs: 50, witnessUrls: [{ url: `${witness.httpUrl() ?? ''}/tlog`, vkey: witnessVkey }], networkLog: { origin: ORIGIN, checkpointIntervalMs: 400 } },
      http: { host: '127.0.0.1', port: 0 }
    }, policyFor([logNodeId, other], [maintainer]))
    logNode = await start('log', logNodeId, { listen: [LOOPBACK], bootstrap: [net.multiaddrs()[0] ?? ''], mdns: false, gossip: { heartbeatIntervalMs: 100 }, tlog: { path: join(dir, 'log', 'tlog'), checkpointIntervalMs: 50 } })
    await waitFor('checkpoint meshes', () => [net, logNode].every(d => (d.p2p.stats().mesh[TOPICS.checkpoints] ?? 0) >= 1))
  }, 60_000)

  afterAll(async () => {
    for (const d of daemons.reverse()) await d.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** The network log's entries, read as anyone would: checkpoint, then entry bundles. */
  async function served (): Promise<{ size: number, note: string, entries: string[] }> {
    const base = `${net.httpUrl() ?? ''}/network-log/`
    const note = await (await fetch(`${base}checkpoint`)).text()
    const cp = parseCheckpoint(openNote(note, ORIGIN, netId.publicKey).text)
    const entries: string[] = []
    for (let i = 0; i * 256 < cp.size; i++) {
      const width = Math.min(256, cp.size - i * 256)
      const res = await fetch(`${base}${tilePath({ level: 'entries', index: i, width })}`)
      entries.push(...decodeEntryBundle(Buffer.from(await res.arrayBuffer())).map(e => e.toString('utf8')))
    }
    const tree = new MemoryTree()
    for (const e of entries) tree.append(leafHash(Buffer.from(e, 'utf8')))
    expect(Buffer.from(tree.root(cp.size))).toEqual(Buffer.from(cp.rootHash))
    return { size: cp.size, note, entries }
  }

  it('enters the node log heads it sees and each settled verdict, and gets public witnesses\' cosignatures', async () => {
    // A release two policy builders agree on, and a node log growing.
    await put(net.store, signAnnouncement(announcement('v1', COMMIT_1, [['base', 'linux/amd64']]), maintainer))
    for (const b of [logNodeId, other]) await put(net.store, signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'v1'), { result: imageResult('v1 base amd64') }), b))
    await putMessages(logNode.store, 0, 9)
    await logNode.tlog?.sync()
    const logOrigin = logNode.tlog?.origin ?? ''
    // The log node also stores what it back-fills from the network node: its log is at least this big.
    const headAtLeast = (entries: string[], n: number): boolean => entries.some(e => e.startsWith(`checkpoint ${logOrigin} `) && Number(e.split(' ')[2]) >= n)
    await waitFor('the log head and the verdict in the network log', async () => {
      const { entries } = await served().catch(() => ({ entries: [] as string[] }))
      return headAtLeast(entries, 9) && entries.some(e => e.startsWith('verdict ') && e.includes(' reproducible sha256:'))
    }, 20_000).catch(async (err: unknown) => { process.stderr.write(JSON.stringify(await served().catch(e => String(e))) + '\n'); throw err })
    const first = await served()
    expect(first.entries.filter(e => e.startsWith('verdict '))).toHaveLength(1)
    expect(first.entries.every(e => /^(checkpoint \S+ \d+ \S+|verdict \S+ \S+ sha256:[0-9a-f]{64})\n$/.test(e))).toBe(true)
    // Pushed to the witness, whose cosignature comes back and is served with the checkpoint.
    await waitFor('the witness\'s cosignature on the network log', async () => {
      const n = parseNote((await served()).note)
      return n.signatures.some(s => checkCosignature(n.text, s, witnessName(witnessId.keyId), witnessId.publicKey) !== undefined)
    }, 20_000)
    expect(net.stats().tlog?.networkLog).toMatchObject({ origin: ORIGIN, vkey: netVkey })

    // It grows consistently; an unchanged verdict is not entered again.
    await putMessages(logNode.store, 9, 30)
    await logNode.tlog?.sync()
    await waitFor('the new log head', async () => headAtLeast((await served()).entries, 30), 20_000)
    const second = await served()
    expect(second.entries.slice(0, first.size)).toEqual(first.entries)
    expect(second.entries.filter(e => e.startsWith('verdict '))).toHaveLength(1)
    expect(net.stats().tlog?.networkLog?.size).toBeGreaterThanOrEqual(second.size)
    firstNote = first.note
  })

  it.runIf(goAvailable('network log go interop'))('passes the checker built on Go\'s sumdb/note and sumdb/tlog', async () => {
    const bin = join(dir, 'checker')
    goBuild(join(import.meta.dirname, 'checker'), bin, join(dir, 'gocache'))
    const oldFile = join(dir, 'old-network-checkpoint')
    await writeFile(oldFile, firstNote)
    const { size, entries } = await served()
    const old = parseCheckpoint(parseNote(firstNote).text)
    // Proofs computed here from the served entries; Go checks them and its own against the served tiles.
    const tree = new MemoryTree()
    for (const e of entries) tree.append(leafHash(Buffer.from(e, 'utf8')))
    const b64 = (hs: Uint8Array[]): string => hs.map(h => Buffer.from(h).toString('base64')).join(',')
    const { stdout } = await promisify(execFile)(bin, [`${net.httpUrl() ?? ''}/network-log/`, netVkey, oldFile, '0', b64(tree.inclusionProof(0, size)), b64(tree.consistencyProof(old.size, size))])
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, size, oldSize: old.size, origin: ORIGIN, entry: entries[0] })
  })

  it('signs at most one checkpoint per interval however often heads arrive, and keeps them across a restart', async () => {
    const path = join(dir, 'standalone')
    const signed: number[] = []
    const identity = generateIdentity()
    const nl = createNetworkLog({ identity }, { path, origin: 'example.org/busy', checkpointIntervalMs: 200 })
    nl.onCheckpoint(() => signed.push(Date.now()))
    await nl.start()
    const began = Date.now()
    for (let i = 1; i <= 60; i++) {
      nl.noteCheckpoint(`neko-rebuilder/log/${String(i % 7)}`, i, Buffer.alloc(32, i))
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    await new Promise(resolve => setTimeout(resolve, 250))
    const elapsed = Date.now() - began
    expect(signed.length).toBeGreaterThan(0)
    expect(signed.length).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 1)
    // Signed at least 200 ms apart; listeners hear of each once it is saved (a synced write, up
    // to a few hundred ms on a busy disk), so only the span is compared, less one write.
    expect((signed.at(-1) ?? 0) - (signed[0] ?? 0)).toBeGreaterThanOrEqual((signed.length - 1) * 200 - 200)
    const before = nl.checkpoint() ?? ''
    const size = nl.size()
    await nl.stop()
    const again = createNetworkLog({ identity }, { path, origin: 'example.org/busy' })
    await again.start()
    expect(again.size()).toBe(size)
    expect(again.checkpoint()).toBe(before)
    // A smaller head than the one entered is not entered again.
    again.noteCheckpoint('neko-rebuilder/log/3', 3, Buffer.alloc(32, 1))
    expect(await again.publishCheckpoint()).toBeUndefined()
    again.noteCheckpoint('neko-rebuilder/log/3', 100, Buffer.alloc(32, 2))
    const grown = parseCheckpoint(parseNote(await again.publishCheckpoint() ?? '').text)
    const old = parseCheckpoint(parseNote(before).text)
    verifyConsistency(old.size, grown.size, await again.consistency(old.size, grown.size), old.rootHash, grown.rootHash)
    await again.stop()
  })
})
