/**
 * The transparency log's costs, each against a baseline measured in the same run:
 *  - append: the log catching up with a store of COUNT messages (entries and their index
 *    written in synced LevelDB batches, every level of the tree hashed, every tile produced,
 *    the checkpoint signed and saved) against bare SHA-256 leaf hashes of the same entries;
 *  - inclusion proofs served over HTTP (`/tlog/inclusion?id=`, keep-alive, 8 in flight)
 *    against proofs computed in-process, per second;
 *  - a start of the log of COUNT entries (each in a process of its own, see tlog-start.ts):
 *    tile roots read back, against every entry rehashed into an all-in-memory tree as a
 *    start did before tiles were kept: CPU time, wall time, RSS and memory retained;
 *  - a 1,000,000-entry tree: proof sizes and the time to verify one proof.
 *   npm run bench:tlog [-- COUNT]
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { trustNobodyPolicy } from '../src/node/daemon/policy.js'
import { createFeedServer } from '../src/node/http/server.js'
import { createLogger } from '../src/node/logger.js'
import { createStore } from '../src/node/store/index.js'
import { createTransparencyLog } from '../src/node/tlog/index.js'
import { exportPrivatePem, generateIdentity } from '../src/protocol/keys.js'
import {
  MemoryTree, TILE_HEIGHT, TILE_WIDTH, entryLeafHash, formatEntry, leafHash, verifyConsistency, verifyInclusion
} from '../src/protocol/tlog/index.js'
import { fakeId, messageId, putMessages } from '../test/tlog/messages.js'

// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug).
const logger = createLogger({ defaultLevel: 'warn' })

const COUNT = Number(process.argv[2] ?? 20_000)
const BIG = 1_000_000

/** A start mark for both clocks: CPU time keeps ratios honest on a busy machine; wall time includes fsync waits. */
function mark (): { wall: bigint, cpu: NodeJS.CpuUsage } {
  return { wall: process.hrtime.bigint(), cpu: process.cpuUsage() }
}

function cpuSeconds (since: ReturnType<typeof mark>): number {
  const u = process.cpuUsage(since.cpu)
  return (u.user + u.system) / 1e6
}

function wallSeconds (since: ReturnType<typeof mark>): number {
  return Number(process.hrtime.bigint() - since.wall) / 1e9
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

const dir = await mkdtemp(join(tmpdir(), 'neko-bench-tlog-'))
try {
  const identity = generateIdentity()
  const store = await createStore({ logger }, { path: join(dir, 'store') })
  process.stdout.write(`filling a store with ${fmt(COUNT)} messages (not timed)…\n`)
  await putMessages(store, 0, COUNT)

  // Baseline: SHA-256 leaf hashes of the very entries the log appends.
  const entries = Array.from({ length: COUNT }, (_, i) => formatEntry('announcement', messageId(i)))
  let t = mark()
  for (const e of entries) leafHash(e)
  const rawRate = COUNT / cpuSeconds(t)

  t = mark()
  const tlog = createTransparencyLog({ store, identity, logger }, { path: join(dir, 'tlog') })
  await tlog.start() // appends everything, signs and saves the checkpoint
  for (let level = 0; TILE_WIDTH ** level <= COUNT; level++) {
    const n = Math.floor(COUNT / TILE_WIDTH ** level)
    for (let i = 0; i * TILE_WIDTH < n; i++) await tlog.tile({ level, index: i, width: Math.min(TILE_WIDTH, n - i * TILE_WIDTH) })
  }
  const appendRate = COUNT / cpuSeconds(t)
  const appendWall = COUNT / wallSeconds(t)
  if (tlog.size() !== COUNT || tlog.checkpointSize() !== COUNT) throw new Error('the log did not take every message')
  process.stdout.write(`append:    ${fmt(appendRate)} entries per CPU second (${fmt(appendWall)}/s wall, fsync included) with entries synced, tiles and checkpoint written; raw SHA-256 of the same leaves ${fmt(rawRate)}/s; ratio ${(appendRate / rawRate).toFixed(3)}\n`)

  // Inclusion proofs: in-process, then over HTTP.
  const PROOFS = 5000
  t = mark()
  for (let i = 0; i < PROOFS; i++) await tlog.inclusion(messageId((i * 7919) % COUNT))
  const localRate = PROOFS / cpuSeconds(t)
  const feed = createFeedServer({ logger, store, policy: trustNobodyPolicy(), tlog: { log: tlog } }, { host: '127.0.0.1', port: 0 })
  const { url } = await feed.start()
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  let next = 0
  t = mark()
  await Promise.all(Array.from({ length: 8 }, async () => {
    const { request } = await import('node:http')
    while (next < PROOFS) {
      const i = next++
      await new Promise<void>((resolve, reject) => {
        request(`${url}/tlog/inclusion?id=${messageId((i * 7919) % COUNT)}`, { agent }, res => {
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode ?? 0}`))
          res.resume().on('end', resolve)
        }).on('error', reject).end()
      })
    }
  }))
  // Client and server share this process: its CPU time covers both ends of each request.
  const httpRate = PROOFS / cpuSeconds(t)
  agent.destroy()
  await feed.stop()
  process.stdout.write(`inclusion: ${fmt(httpRate)} proofs per CPU second served over HTTP (with the checkpoint; client in the same process); ${fmt(localRate)}/s looked up and computed in-process; ratio ${(httpRate / localRate).toFixed(3)}\n`)
  await tlog.stop()
  await store.close()

  // Starting the log again: each way in a fresh process, so RSS is the start's own.
  const keyFile = join(dir, 'key.pem')
  await writeFile(keyFile, exportPrivatePem(identity))
  interface Start { size: number, cpuS: number, wallS: number, rss: number, retained: number }
  const startOnce = async (mode: string): Promise<Start> => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', join(import.meta.dirname, 'tlog-start.ts'), mode, join(dir, 'store'), join(dir, 'tlog'), keyFile], { maxBuffer: 1 << 20 })
    const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Start
    if (r.size !== COUNT) throw new Error(`${mode} start saw ${r.size} entries, not ${COUNT}`)
    return r
  }
  const rehash = await startOnce('rehash')
  const tiled = await startOnce('tiles')
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1)
  process.stdout.write(`start:     ${fmt(COUNT)} entries; tile roots read: ${tiled.cpuS.toFixed(2)} CPU s (${tiled.wallS.toFixed(2)} s wall), RSS ${mib(tiled.rss)} MiB, ${mib(tiled.retained)} MiB retained; every entry rehashed into memory (as before tiles were kept): ${rehash.cpuS.toFixed(2)} CPU s (${rehash.wallS.toFixed(2)} s wall), RSS ${mib(rehash.rss)} MiB, ${mib(rehash.retained)} MiB retained; CPU ratio ${(tiled.cpuS / rehash.cpuS).toFixed(3)}, retained-memory ratio ${(tiled.retained / rehash.retained).toFixed(3)}\n`)

  // A million entries, in memory.
  const big = new MemoryTree()
  const leaves = Array.from({ length: BIG }, (_, i) => entryLeafHash('claim', fakeId(i)))
  t = mark()
  for (const l of leaves) big.append(l)
  const buildS = cpuSeconds(t)
  const root = big.root()
  const index = 765_432
  const proof = big.inclusionProof(index)
  const leaf = entryLeafHash('claim', fakeId(index))
  const VERIFY = 20_000
  t = mark()
  for (let i = 0; i < VERIFY; i++) verifyInclusion(index, BIG, leaf, proof, root)
  const incUs = cpuSeconds(t) / VERIFY * 1e6
  const old = 654_321
  const cons = big.consistencyProof(old, BIG)
  const oldRoot = big.root(old)
  t = mark()
  for (let i = 0; i < VERIFY; i++) verifyConsistency(old, BIG, cons, oldRoot, root)
  const consUs = cpuSeconds(t) / VERIFY * 1e6
  const tiles = Math.ceil(Math.log(BIG) / Math.log(2 ** TILE_HEIGHT))
  process.stdout.write(`1,000,000 entries: tree built from leaf hashes in ${buildS.toFixed(2)} CPU s (${fmt(BIG / buildS)} leaves/s); heap ${fmt(process.memoryUsage().heapUsed / 2 ** 20)} MiB, buffers ${fmt(process.memoryUsage().arrayBuffers / 2 ** 20)} MiB\n`)
  process.stdout.write(`  inclusion proof: ${proof.length} hashes = ${proof.length * 32} bytes, verified in ${incUs.toFixed(1)} µs of CPU; from tiles a client fetches ${tiles} tiles (${tiles * 8} KiB at most)\n`)
  process.stdout.write(`  consistency proof ${fmt(old)} → ${fmt(BIG)}: ${cons.length} hashes = ${cons.length * 32} bytes, verified in ${consUs.toFixed(1)} µs of CPU\n`)
} finally {
  await rm(dir, { recursive: true, force: true })
}
