/**
 * The node's transparency log: every announcement and claim the store holds, in arrival
 * (cursor) order, as an RFC 6962 tree served in the C2SP tlog-tiles layout, with signed
 * C2SP checkpoints.
 *
 * Durability: entries are written in one synced LevelDB batch together with the store cursor
 * they reach; only then do they enter the in-memory tree, and a checkpoint is signed only over
 * what is in that tree. So after kill -9 the newest checkpoint on disk never exceeds the
 * entries on disk, and on restart the log appends whatever the store acknowledged meanwhile.
 * Each full level-0 tile (256 leaf hashes and the levels above them) and its root are
 * written in the same batch as the entries that complete it. Only the roots (and what lies
 * above them) and the partial tile's leaves stay in memory, about a quarter of a byte per
 * entry; a start reads the roots and hashes at most 255 entries (see tiled-tree.ts).
 */
import { Level } from 'level'
import { parseCheckpoint, formatCheckpoint } from '../../protocol/tlog/checkpoint.js'
import { formatEntry, logOrigin } from '../../protocol/tlog/entry.js'
import { leafHash } from '../../protocol/tlog/hash.js'
import { formatNote, formatVerifierKey, signatureLine } from '../../protocol/tlog/note.js'
import { encodeEntryBundle, TILE_WIDTH } from '../../protocol/tlog/tiles.js'
import { componentLog } from '../logger.js'
import { TlogStorageError } from './errors.js'
import { createTiledTree, type CompletedTile, type PreparedAppend } from './tiled-tree.js'
import type { InclusionAnswer, TransparencyLog, TransparencyLogComponents, TransparencyLogInit } from './types.js'

const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000
/** Messages read from the store per synced batch. */
const BATCH = 512
/**
 * Recent checkpoints kept, in memory and on disk, with their cosignatures, so a proof can
 * target a cosigned one. At one checkpoint a second under load that is the last 4 minutes.
 */
export const RECENT_CHECKPOINTS = 256
/** Cosignatures kept per checkpoint. */
const MAX_COSIGNATURES = 64

/** Adds each cosignature line (by witness name, the first kept) up to MAX_COSIGNATURES; returns how many were new. */
export function keepCosignatures (kept: Map<string, string>, lines: readonly string[]): number {
  let added = 0
  for (const line of lines) {
    const name = line.split(' ')[1] ?? ''
    if (kept.has(name) || kept.size >= MAX_COSIGNATURES) continue
    kept.set(name, line)
    added++
  }
  return added
}

const indexKey = (i: number): string => i.toString().padStart(16, '0')

interface SignedCheckpoint {
  text: string
  size: number
  logLine: string
  /** Witness name → cosignature line. */
  cosignatures: Map<string, string>
}

function noteOf (c: SignedCheckpoint): string {
  return formatNote(c.text, [c.logLine, ...c.cosignatures.values()])
}

export function createTransparencyLog (components: TransparencyLogComponents, init: TransparencyLogInit): TransparencyLog {
  const log = componentLog(components.logger, 'tlog')
  const { store, identity } = components
  const origin = logOrigin(identity.keyId)
  const vkey = formatVerifierKey(origin, identity.publicKey)
  const intervalMs = init.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS
  const db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const entries = db.sublevel<string, string>('e', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // index → entry
  const byId = db.sublevel<string, string>('i', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // message id → index
  const meta = db.sublevel<string, string>('m', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const saved = db.sublevel<string, string>('c', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // size → checkpoint with cosignatures
  const tilesDb = db.sublevel<string, Buffer>('t', { keyEncoding: 'utf8', valueEncoding: 'buffer' }) // full level-0 tile index → its 511 hashes
  const rootsDb = db.sublevel<string, string>('r', { keyEncoding: 'utf8', valueEncoding: 'utf8' }) // full level-0 tile index → its root (hex)
  const tree = createTiledTree({
    readTile: async (index) => await tilesDb.get(indexKey(index))
  }, init.cacheTiles !== undefined ? { cacheTiles: init.cacheTiles } : {})
  let cursor = 0
  const recent: SignedCheckpoint[] = []
  const listeners: Array<(note: string) => void> = []
  let chain: Promise<unknown> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  let republishTimer: NodeJS.Timeout | undefined
  let lastSigned = 0
  let lastAnnounced = 0
  let republished = 0
  // A checkpoint is announced when it changes, not again on a timer unless asked: at 10,000
  // nodes a 5-minute re-announcement from each would reach every node 33 times a second. Late
  // joiners and witnesses that missed one fetch it from the log's node (witness.ts, `met`).
  const republishMs = init.republishIntervalMs
  if (republishMs !== undefined && (!Number.isSafeInteger(republishMs) || republishMs < 100)) throw new TlogStorageError(`republishIntervalMs must be an integer of at least 100, got ${String(republishMs)}`)
  let running = false
  let waitingSync: Promise<void> | undefined

  function serialize<T> (fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn, fn)
    chain = run.catch(() => undefined)
    return run
  }

  const latest = (): SignedCheckpoint | undefined => recent[recent.length - 1]

  async function load (): Promise<void> {
    await db.open()
    const size = Number(await meta.get('size') ?? '0')
    cursor = Number(await meta.get('cursor') ?? '0')
    const roots: Buffer[] = []
    for await (const [key, value] of rootsDb.iterator()) {
      if (key !== indexKey(roots.length)) throw new TlogStorageError(`tile root ${key} is out of sequence (expected ${indexKey(roots.length)})`)
      roots.push(Buffer.from(value, 'hex'))
    }
    tree.load(roots, [])
    // The entries after the last full tile; a log written before tiles were kept has them all,
    // and its tiles are written now, once.
    let leaves: Buffer[] = []
    let at = roots.length * TILE_WIDTH
    for await (const [key, value] of entries.iterator({ gte: indexKey(at) })) {
      if (key !== indexKey(at)) throw new TlogStorageError(`log entry ${key} is out of sequence (expected ${indexKey(at)})`)
      leaves.push(leafHash(Buffer.from(value, 'latin1')))
      at++
      if (leaves.length === BATCH) {
        await persistTiles(tree.prepare(leaves))
        leaves = []
      }
    }
    await persistTiles(tree.prepare(leaves))
    if (tree.size !== size) throw new TlogStorageError(`the log records ${size} entries but holds ${tree.size}`)
    const stored: string[] = []
    for await (const v of saved.values()) stored.push(v)
    // A log written before older checkpoints were kept holds only its latest, under meta.
    const legacy = stored.length === 0 ? await meta.get('checkpoint') : undefined
    if (legacy !== undefined) stored.push(legacy)
    for (const value of stored.slice(-RECENT_CHECKPOINTS)) {
      const c = JSON.parse(value) as { text: string, logLine: string, cosignatures: Array<[string, string]> }
      const parsed = parseCheckpoint(c.text)
      // The invariant that makes a crash safe: the signed tree is in the stored entries.
      if (parsed.size > tree.size || !Buffer.from(await tree.root(parsed.size)).equals(parsed.rootHash)) {
        throw new TlogStorageError(`the saved checkpoint (size ${parsed.size}) does not match the stored entries (${tree.size})`)
      }
      recent.push({ text: c.text, size: parsed.size, logLine: c.logLine, cosignatures: new Map(c.cosignatures) })
    }
    log.info({ origin, size: tree.size, cursor }, 'transparency log loaded')
  }

  type Batch = Array<{ type: 'put', key: string, value: string, sublevel: typeof meta }>
  /** Tiles are binary (their sublevel's values are buffers), which the batch's typing of one value type cannot say. */
  function tileOps (tiles: CompletedTile[]): Batch {
    return tiles.flatMap(t => [
      { type: 'put' as const, key: indexKey(t.index), value: t.nodes, sublevel: tilesDb },
      { type: 'put' as const, key: indexKey(t.index), value: t.root.toString('hex'), sublevel: rootsDb }
    ]) as unknown as Batch
  }

  /** Writes the tiles an append over already stored entries completes, then takes the leaves in. */
  async function persistTiles (p: PreparedAppend): Promise<void> {
    if (p.tiles.length > 0) await db.batch(tileOps(p.tiles), { sync: true })
    p.commit()
  }

  async function appendFromStore (): Promise<void> {
    for (;;) {
      const page = await store.messagesSince(cursor, BATCH)
      if (page.next === cursor) return
      const ops: Array<{ type: 'put', key: string, value: string, sublevel: typeof entries }> = []
      const leaves: Buffer[] = []
      let next = tree.size
      for (const m of page.items) {
        let entry: Buffer
        try {
          entry = formatEntry(m.kind, m.id)
        } catch (err) {
          log.warn({ err, id: m.id }, 'a stored message has no envelope id: not logged')
          continue
        }
        ops.push({ type: 'put', key: indexKey(next), value: entry.toString('latin1'), sublevel: entries })
        ops.push({ type: 'put', key: m.id, value: String(next), sublevel: byId })
        leaves.push(leafHash(entry))
        next++
      }
      const prepared = tree.prepare(leaves)
      await db.batch([
        ...ops,
        ...tileOps(prepared.tiles),
        { type: 'put', key: 'size', value: String(next), sublevel: meta },
        { type: 'put', key: 'cursor', value: String(page.next), sublevel: meta }
      ], { sync: true })
      prepared.commit()
      cursor = page.next
    }
  }

  async function signNow (): Promise<string | undefined> {
    const size = tree.size
    const last = latest()
    if (last !== undefined && last.size === size) return undefined
    const text = formatCheckpoint({ origin, size, rootHash: await tree.root(size) })
    const c: SignedCheckpoint = { text, size, logLine: signatureLine(text, origin, identity.privateKey), cosignatures: new Map() }
    const dropped = recent.length >= RECENT_CHECKPOINTS ? recent[0] : undefined
    await saveCheckpoint(c, dropped)
    recent.push(c)
    if (dropped !== undefined) recent.shift()
    lastSigned = Date.now()
    const note = noteOf(c)
    announce(note)
    return note
  }

  function announce (note: string): void {
    lastAnnounced = Date.now()
    for (const cb of listeners) {
      try { cb(note) } catch (err) { log.warn({ err }, 'a checkpoint listener failed') }
    }
  }

  /** Saves a checkpoint with its cosignatures (and forgets the one it pushes out). */
  async function saveCheckpoint (c: SignedCheckpoint, dropped?: SignedCheckpoint): Promise<void> {
    const value = JSON.stringify({ text: c.text, logLine: c.logLine, cosignatures: [...c.cosignatures] })
    await db.batch([
      { type: 'put', key: indexKey(c.size), value, sublevel: saved },
      ...(dropped !== undefined ? [{ type: 'del' as const, key: indexKey(dropped.size), sublevel: saved }] : []),
      { type: 'del', key: 'checkpoint', sublevel: meta }
    ], { sync: true })
  }

  /** While no entry arrives, the latest checkpoint (the log's signature alone) is announced again. */
  function republishIfIdle (): void {
    const c = latest()
    if (!running || c === undefined || republishMs === undefined || Date.now() - lastAnnounced < republishMs) return
    republished++
    log.debug({ size: c.size }, 'announcing the latest checkpoint again')
    announce(formatNote(c.text, [c.logLine]))
  }

  function schedule (): void {
    if (!running || timer !== undefined) return
    const wait = Math.max(0, lastSigned + intervalMs - Date.now())
    timer = setTimeout(() => {
      timer = undefined
      void serialize(signNow).catch((err: unknown) => { log.warn({ err }, 'signing a checkpoint failed') })
    }, wait)
    timer.unref()
  }

  async function entryBundle (index: number, width: number): Promise<Buffer | undefined> {
    if (index * TILE_WIDTH + width > tree.size) return undefined
    const values: Buffer[] = []
    for await (const v of entries.values({ gte: indexKey(index * TILE_WIDTH), lt: indexKey(index * TILE_WIDTH + width) })) values.push(Buffer.from(v, 'latin1'))
    if (values.length !== width) throw new TlogStorageError(`entry bundle ${index} holds ${values.length} of ${width} entries`)
    return encodeEntryBundle(values)
  }

  return {
    origin,
    vkey,
    async start () {
      await load()
      running = true
      await serialize(appendFromStore)
      await serialize(signNow)
      if (republishMs !== undefined) {
        republishTimer = setInterval(republishIfIdle, Math.max(50, Math.floor(republishMs / 4)))
        republishTimer.unref()
      }
    },
    async stop () {
      running = false
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      if (republishTimer !== undefined) clearInterval(republishTimer)
      republishTimer = undefined
      await chain
      await db.close()
    },
    async sync () {
      // Stored messages come in bursts: one append still waiting in line reads them all, so
      // a burst of N costs one store read, not N. It is dropped from here once it starts.
      waitingSync ??= serialize(async () => { waitingSync = undefined; await appendFromStore() })
      await waitingSync
      if (latest()?.size !== tree.size) schedule()
    },
    size: () => tree.size,
    checkpoint () {
      const c = latest()
      return c === undefined ? undefined : noteOf(c)
    },
    checkpointSize: () => latest()?.size ?? 0,
    checkpoints: () => recent.map(c => ({ size: c.size, note: noteOf(c) })).reverse(),
    republished: () => republished,
    publishCheckpoint: async () => await serialize(async () => { await appendFromStore(); return await signNow() }),
    async tile (ref) {
      if (ref.level === 'entries') return await entryBundle(ref.index, ref.width)
      return tree.tile(ref.level, ref.index, ref.width)
    },
    async inclusion (id) {
      const at = await byId.get(id)
      if (at === undefined) return undefined
      const index = Number(at)
      // The checkpoint with the most cosignatures that holds the entry, the newest among equals:
      // the newest one may not be cosigned yet.
      let c: SignedCheckpoint | undefined
      for (const r of recent) if (r.size > index && (c === undefined || r.cosignatures.size >= c.cosignatures.size)) c = r
      if (c === undefined) return undefined
      const entry = await entries.get(indexKey(index))
      const kind = entry?.startsWith('claim ') === true ? 'claim' : 'announcement'
      const answer: InclusionAnswer = {
        id,
        kind,
        vkey,
        index,
        size: c.size,
        proof: (await tree.inclusionProof(index, c.size)).map(h => Buffer.from(h).toString('base64')),
        checkpoint: noteOf(c)
      }
      return answer
    },
    consistency: async (oldSize, newSize) => await tree.consistencyProof(oldSize, newSize),
    async addCosignatures (checkpointText, lines) {
      const c = recent.find(r => r.text === checkpointText)
      if (c === undefined) return 0
      const added = keepCosignatures(c.cosignatures, lines)
      // Saved whichever recent checkpoint it is, unless it has been pushed out meanwhile.
      if (added > 0) await serialize(async () => { if (recent.includes(c)) await saveCheckpoint(c) })
      return added
    },
    onCheckpoint (cb) { listeners.push(cb) }
  }
}
