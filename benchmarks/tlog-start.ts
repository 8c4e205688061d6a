/**
 * One start of a transparency log, in a process of its own so its memory is its own; run by
 * benchmarks/tlog.ts, which prints the comparison. Modes:
 *  - `rehash`: what a start did before tiles were kept: every entry read back, leaf-hashed
 *    and appended to a tree holding every hash in memory;
 *  - `tiles`: the log's own start (tile roots read, at most 255 entries hashed).
 * Prints one JSON line: CPU and wall seconds of the start, and memory after it.
 *   tsx benchmarks/tlog-start.ts MODE STORE_DIR TLOG_DIR KEY_PEM_FILE
 */
import { readFile } from 'node:fs/promises'
import { Level } from 'level'
import { createLogger } from '../src/node/logger.js'
import { createStore } from '../src/node/store/index.js'
import { createTransparencyLog } from '../src/node/tlog/index.js'
import { identityFromPrivatePem } from '../src/protocol/keys.js'
import { leafHash, MemoryTree } from '../src/protocol/tlog/index.js'

const [mode, storeDir, tlogDir, keyFile] = process.argv.slice(2) as [string, string, string, string]
// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug); made before the memory baseline.
const logger = createLogger({ defaultLevel: 'warn' })

function memory (): { rss: number, heap: number, buffers: number } {
  globalThis.gc?.()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed, buffers: m.arrayBuffers }
}

const base = memory()
const wall = process.hrtime.bigint()
const cpu = process.cpuUsage()
let size: number
let keep: unknown
if (mode === 'rehash') {
  const db = new Level<string, string>(tlogDir, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const tree = new MemoryTree()
  for await (const value of db.sublevel<string, string>('e', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).values()) tree.append(leafHash(Buffer.from(value, 'latin1')))
  tree.root()
  size = tree.size
  keep = { tree, db }
} else {
  const store = await createStore({ logger }, { path: storeDir })
  const tlog = createTransparencyLog({ store, identity: identityFromPrivatePem(await readFile(keyFile, 'utf8')), logger }, { path: tlogDir })
  await tlog.start()
  size = tlog.size()
  keep = { tlog, store }
}
const u = process.cpuUsage(cpu)
const after = memory()
process.stdout.write(JSON.stringify({
  mode,
  size,
  cpuS: (u.user + u.system) / 1e6,
  wallS: Number(process.hrtime.bigint() - wall) / 1e9,
  rss: after.rss,
  retained: after.heap + after.buffers - base.heap - base.buffers,
  kept: keep !== undefined
}) + '\n')
process.exit(0)
