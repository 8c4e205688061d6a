/**
 * A network log (`join --network-log ORIGIN`): a transparency log, under a stable origin the
 * operator chooses (a domain path), whose entries are the per-node log checkpoints this node
 * sees and each verdict it computes. Its checkpoint changes at most once per interval (default
 * 5 minutes: at most 288 a day, what public witnesses accept from a log), so it can be pushed to
 * public C2SP witnesses: anyone holding a cosigned checkpoint of it can then check that no node
 * showed this node one log head and the public another, and that verdicts were not rewritten.
 *
 * Entries (ASCII, one line each):
 *
 *     checkpoint <log origin> <size> <base64 root>\n
 *     verdict <target key> <status> sha256:<hex of the verdict's VSA statement>\n
 *
 * A log head is entered when it grows past the one last entered for its origin, a verdict when
 * its VSA statement changes. Entries and the checkpoint over them are written in one synced
 * batch; the tree is rebuilt from the entries at start (a few hundred a day per node).
 */
import { Level } from 'level'
import { formatCheckpoint, parseCheckpoint } from '../../protocol/tlog/checkpoint.js'
import { leafHash } from '../../protocol/tlog/hash.js'
import { formatNote, formatVerifierKey, isValidKeyName, parseNote, signatureLine } from '../../protocol/tlog/note.js'
import { encodeEntryBundle, TILE_WIDTH, type TileRef } from '../../protocol/tlog/tiles.js'
import { MemoryTree } from '../../protocol/tlog/tree.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { TlogConfigError, TlogStorageError } from './errors.js'
import { keepCosignatures } from './log.js'

/** Log heads and verdicts waiting for the next checkpoint, at most; beyond it the oldest heads are superseded anyway. */
const MAX_PENDING = 4096

export interface NetworkLogVerdict {
  /** The target key. */
  key: string
  status: string
  /** `sha256:<hex>` of the VSA statement for the verdict. */
  vsaDigest: string
}

export interface NetworkLogComponents {
  logger?: ComponentLogger
  identity: SigningIdentity
  /** The verdicts decided now, read at each interval. */
  verdicts?: () => Promise<NetworkLogVerdict[]>
}

export interface NetworkLogInit {
  path: string
  /** A stable origin: a key name, e.g. `example.org/neko-rebuilder/network-log`. */
  origin: string
  /** Least time between two checkpoints (ms, default 300,000). */
  checkpointIntervalMs?: number
}

export interface NetworkLog {
  readonly origin: string
  readonly vkey: string
  start: () => Promise<void>
  stop: () => Promise<void>
  /** A node log's checkpoint seen (verified by the caller): entered at the next interval if it grew. */
  noteCheckpoint: (origin: string, size: number, rootHash: Uint8Array) => void
  /** Enters what is pending and signs a checkpoint if anything was; returns it. Runs by itself every interval. */
  publishCheckpoint: () => Promise<string | undefined>
  size: () => number
  checkpoint: () => string | undefined
  consistency: (oldSize: number, newSize: number) => Promise<Uint8Array[]>
  addCosignatures: (checkpointText: string, lines: string[]) => Promise<number>
  onCheckpoint: (cb: (note: string) => void) => void
  tile: (ref: TileRef) => Promise<Buffer | undefined>
}

export function createNetworkLog (components: NetworkLogComponents, init: NetworkLogInit): NetworkLog {
  const log = componentLog(components.logger, 'network-log')
  const { identity } = components
  const origin = init.origin
  if (!isValidKeyName(origin) || origin.startsWith('neko-rebuilder/')) throw new TlogConfigError(`network log origin ${JSON.stringify(origin.slice(0, 120))} must be a key name (no spaces or +) outside neko-rebuilder/, e.g. example.org/neko-rebuilder/network-log`)
  const intervalMs = init.checkpointIntervalMs ?? 300_000
  const db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const entriesDb = db.sublevel<string, string>('e', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // index (16 digits) → entry
  const meta = db.sublevel<string, string>('m', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // checkpoint → note with cosignatures
  const heads = db.sublevel<string, string>('h', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // log origin → last entered size
  const verdictsDb = db.sublevel<string, string>('v', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // target key → last entered VSA digest
  const tree = new MemoryTree()
  const entries: Buffer[] = []
  const entered = new Map<string, number>()
  const enteredVerdicts = new Map<string, string>()
  const pending = new Map<string, { size: number, root: string }>()
  const listeners: Array<(note: string) => void> = []
  let current: { text: string, logLine: string, cosignatures: Map<string, string> } | undefined
  let timer: NodeJS.Timeout | undefined
  let lastSignedAt = 0
  let chain: Promise<unknown> = Promise.resolve()
  const vkey = formatVerifierKey(origin, identity.publicKey)
  const noteOf = (c: NonNullable<typeof current>): string => formatNote(c.text, [c.logLine, ...c.cosignatures.values()])
  const indexKey = (i: number): string => String(i).padStart(16, '0')

  /** One publish at a time. */
  async function serialize<T> (fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn)
    chain = run.catch(() => {})
    return await run
  }

  async function publish (): Promise<string | undefined> {
    const lines: string[] = []
    const headOps: Array<[string, number]> = []
    for (const [o, h] of pending) {
      if (h.size <= (entered.get(o) ?? 0)) continue
      lines.push(`checkpoint ${o} ${h.size} ${h.root}\n`)
      headOps.push([o, h.size])
    }
    pending.clear()
    const verdictOps: Array<[string, string]> = []
    for (const v of await components.verdicts?.().catch((err: unknown) => { log.warn({ err }, 'reading verdicts failed'); return [] }) ?? []) {
      if (enteredVerdicts.get(v.key) === v.vsaDigest || /\s/.test(v.key + v.status + v.vsaDigest)) continue
      lines.push(`verdict ${v.key} ${v.status} ${v.vsaDigest}\n`)
      verdictOps.push([v.key, v.vsaDigest])
    }
    if (lines.length === 0) return undefined
    lastSignedAt = Date.now()
    const added = lines.map(l => Buffer.from(l, 'utf8'))
    const next = new MemoryTree()
    for (const e of [...entries, ...added]) next.append(leafHash(e))
    const size = entries.length + added.length
    const text = formatCheckpoint({ origin, size, rootHash: next.root(size) })
    const c = { text, logLine: signatureLine(text, origin, identity.privateKey), cosignatures: new Map<string, string>() }
    await db.batch([
      ...added.map((e, i) => ({ type: 'put' as const, sublevel: entriesDb, key: indexKey(entries.length + i), value: e.toString('utf8') })),
      ...headOps.map(([o, s]) => ({ type: 'put' as const, sublevel: heads, key: o, value: String(s) })),
      ...verdictOps.map(([k, d]) => ({ type: 'put' as const, sublevel: verdictsDb, key: k, value: d })),
      { type: 'put', sublevel: meta, key: 'checkpoint', value: noteOf(c) }
    ], { sync: true })
    for (const e of added) { entries.push(e); tree.append(leafHash(e)) }
    for (const [o, s] of headOps) entered.set(o, s)
    for (const [k, d] of verdictOps) enteredVerdicts.set(k, d)
    current = c
    const note = noteOf(c)
    log.info({ origin, size }, 'network log checkpoint signed')
    for (const cb of listeners) cb(note)
    return note
  }

  return {
    origin,
    vkey,
    async start () {
      await db.open()
      for await (const v of entriesDb.values()) {
        const e = Buffer.from(v, 'utf8')
        entries.push(e)
        tree.append(leafHash(e))
      }
      for await (const [k, v] of heads.iterator()) entered.set(k, Number(v))
      for await (const [k, v] of verdictsDb.iterator()) enteredVerdicts.set(k, v)
      const saved = await meta.get('checkpoint')
      if (saved !== undefined) {
        const n = parseNote(saved)
        const cp = parseCheckpoint(n.text)
        // The checkpoint is written with its entries: one that they do not prove is refused.
        if (cp.size !== entries.length || !Buffer.from(tree.root(cp.size)).equals(cp.rootHash)) throw new TlogStorageError(`the saved network log checkpoint (size ${cp.size}) does not match its ${entries.length} entries`)
        const logLine = n.signatures.find(s => s.name === origin)?.line
        if (logLine === undefined) throw new TlogStorageError('the saved network log checkpoint carries no signature of the log')
        current = { text: n.text, logLine, cosignatures: new Map(n.signatures.filter(s => s.name !== origin).map(s => [s.name, s.line])) }
      }
      // Ticks are checked against the last signing: a late tick must not shorten the next interval.
      timer = setInterval(() => {
        if (Date.now() - lastSignedAt < intervalMs) return
        void serialize(publish).catch((err: unknown) => { log.warn({ err }, 'signing a network log checkpoint failed') })
      }, Math.max(10, Math.floor(intervalMs / 4)))
      timer.unref()
    },
    async stop () {
      clearInterval(timer)
      await chain
      await db.close()
    },
    noteCheckpoint (o, size, rootHash) {
      if (size <= (entered.get(o) ?? 0) || size <= (pending.get(o)?.size ?? 0)) return
      if (!pending.has(o) && pending.size >= MAX_PENDING) return
      pending.set(o, { size, root: Buffer.from(rootHash).toString('base64') })
    },
    publishCheckpoint: async () => await serialize(publish),
    size: () => entries.length,
    checkpoint: () => current === undefined ? undefined : noteOf(current),
    async consistency (oldSize, newSize) {
      if (newSize > entries.length) throw new TlogStorageError(`the network log has ${entries.length} entries, not ${newSize}`)
      return tree.consistencyProof(oldSize, newSize)
    },
    async addCosignatures (checkpointText, lines) {
      const c = current
      if (c === undefined || c.text !== checkpointText) return 0
      const added = keepCosignatures(c.cosignatures, lines)
      if (added > 0) await serialize(async () => { if (current === c) await meta.put('checkpoint', noteOf(c)) })
      return added
    },
    onCheckpoint (cb) { listeners.push(cb) },
    async tile (ref) {
      // Entries and the checkpoint over them change together: the tree is the checkpoint's.
      if (ref.level !== 'entries') {
        const t = tree.tile(ref.level, ref.index, ref.width)
        return t === undefined ? undefined : Buffer.from(t)
      }
      const start = ref.index * TILE_WIDTH
      if (start + ref.width > entries.length) return undefined
      return encodeEntryBundle(entries.slice(start, start + ref.width))
    }
  }
}
