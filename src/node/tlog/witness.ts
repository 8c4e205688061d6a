/**
 * The node as a witness of every other node's log (C2SP tlog-witness semantics over
 * libp2p): for each origin it keeps the newest checkpoint it verified; a newer one is
 * cosigned (C2SP tlog-cosignature) only after a consistency proof fetched from the log's own
 * node shows it extends the old one. Two signed checkpoints that cannot both hold are kept as
 * a split-view proof and the log is flagged. A log that does not answer, or answers with a
 * proof that proves nothing, is reported and not cosigned. Cosignatures of this node's own
 * checkpoints, gossiped by other witnesses, are handed to the log.
 */
import { Level } from 'level'
import { cosignatureLine } from '../../protocol/tlog/cosignature.js'
import { witnessName } from '../../protocol/tlog/entry.js'
import { decodeCheckpointMessage, encodeCheckpointMessage, type VerifiedCheckpoint } from '../../protocol/tlog/gossip.js'
import { ALG_COSIGNATURE_V1, formatNote, formatVerifierKey } from '../../protocol/tlog/note.js'
import { consistencyRoots } from '../../protocol/tlog/proof.js'
import type { SplitViewProof } from '../../protocol/tlog/split-view.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { peerIdOf } from '../p2p/identity.js'
import type { TransparencyLog } from './types.js'

/** Logs a node witnesses at most; beyond it new origins are ignored. */
const MAX_LOGS = 1024

export interface WitnessComponents {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  identity: SigningIdentity
  /** This node's own log, which receives cosignatures of its checkpoints. */
  log?: TransparencyLog
  publish: (data: Uint8Array) => Promise<unknown>
  /** Fetches a full-form consistency proof from the node with `peerId`. */
  consistencyProof: (peerId: string, origin: string, oldSize: number, newSize: number) => Promise<Uint8Array[]>
}

export interface WitnessInit {
  /** Directory of the witness's LevelDB database. */
  path: string
}

export interface SplitViewRecord extends SplitViewProof {
  logKeyId: string
  detectedAt: string
}

/** A log that gave no usable consistency proof, since when, and why the last time. */
export interface UnresponsiveLog {
  origin: string
  logKeyId: string
  /** ISO time of the first failure since the last good proof. */
  since: string
  /** ISO time of the latest failure. */
  lastFailure: string
  failures: number
  lastError: string
  /** The size this witness last cosigned, and the size the log asked it to cosign. */
  cosignedSize: number
  pendingSize: number
}

export interface WitnessStats {
  /** Logs with a verified checkpoint. */
  logs: number
  cosigned: number
  /** Logs that failed to give a usable proof since their last good one: not cosigned meanwhile. */
  unresponsive: UnresponsiveLog[]
  /** Key ids of logs proven to have shown two views. */
  splitViews: string[]
}

/** What gossip validation found; the p2p layer hands the checkpoint on to `receive`. */
export type CheckpointCheck = { verdict: 'accept', checkpoint: VerifiedCheckpoint } | { verdict: 'reject' }

export interface Witness {
  readonly name: string
  readonly vkey: string
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Gossip validation: every signature in the message is checked. */
  validate: (data: Uint8Array) => CheckpointCheck
  /** Acts on an accepted message. */
  receive: (data: Uint8Array, checked?: VerifiedCheckpoint) => Promise<void>
  /** Publishes one of this node's own checkpoints. */
  publishOwn: (note: string) => Promise<void>
  splitViews: () => Promise<SplitViewRecord[]>
  /** Logs that stopped answering proof requests (or answered with nothing that proves). */
  unresponsive: () => UnresponsiveLog[]
  stats: () => WitnessStats
}

interface Seen { size: number, root: string, note: string, cosignedText?: string }

export function createWitness (components: WitnessComponents, init: WitnessInit): Witness {
  const log = componentLog(components.logger, 'witness')
  const { identity } = components
  const name = witnessName(identity.keyId)
  const vkey = formatVerifierKey(name, identity.publicKey, ALG_COSIGNATURE_V1)
  const db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const seenDb = db.sublevel<string, string>('seen', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const splitDb = db.sublevel<string, string>('split', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const failDb = db.sublevel<string, string>('unresponsive', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  const seen = new Map<string, Seen>()
  const split = new Map<string, SplitViewRecord>()
  // Kept on disk too, so a restart does not forget since when a log has been silent.
  const failures = new Map<string, UnresponsiveLog>()
  const busy = new Map<string, VerifiedCheckpoint | null>() // origin → newest waiting (null: none)
  let cosigned = 0

  async function fail (c: VerifiedCheckpoint, prev: Seen, reason: string): Promise<void> {
    const origin = c.checkpoint.origin
    const now = new Date().toISOString()
    const f = failures.get(origin) ?? { origin, logKeyId: c.logKeyId, since: now, lastFailure: now, failures: 0, lastError: '', cosignedSize: prev.size, pendingSize: 0 }
    f.failures++
    f.lastFailure = now
    f.lastError = reason.slice(0, 300)
    f.pendingSize = Math.max(f.pendingSize, c.checkpoint.size)
    failures.set(origin, f)
    await failDb.put(origin, JSON.stringify(f))
    log.warn({ origin, reason, failures: f.failures, since: f.since }, 'log gave no usable consistency proof: not cosigned')
  }

  async function flag (c: VerifiedCheckpoint, prev: Seen, proof: Uint8Array[]): Promise<void> {
    if (split.has(c.checkpoint.origin)) return
    const record: SplitViewRecord = {
      origin: c.checkpoint.origin,
      logKeyId: c.logKeyId,
      first: prev.note,
      second: c.note,
      proof: proof.map(h => Buffer.from(h).toString('base64')),
      detectedAt: new Date().toISOString()
    }
    split.set(record.origin, record)
    await splitDb.put(record.origin, JSON.stringify(record))
    log.error({ origin: record.origin, logKeyId: record.logKeyId, sizes: [prev.size, c.checkpoint.size] }, 'split view: the log signed two inconsistent checkpoints')
  }

  async function cosign (c: VerifiedCheckpoint): Promise<void> {
    const line = cosignatureLine(c.text, name, identity.privateKey, Math.floor(Date.now() / 1000))
    cosigned++
    await components.publish(encodeCheckpointMessage(formatNote(c.text, [c.logLine, line]), [c.logVkey, vkey]))
  }

  async function witness (c: VerifiedCheckpoint): Promise<void> {
    const origin = c.checkpoint.origin
    if (split.has(origin)) return // a flagged log is not cosigned again
    const prev = seen.get(origin)
    const root = Buffer.from(c.checkpoint.rootHash).toString('base64')
    if (prev === undefined && seen.size >= MAX_LOGS) return
    if (prev !== undefined && c.checkpoint.size < prev.size) return
    if (prev !== undefined && c.checkpoint.size === prev.size) {
      if (prev.root !== root) return await flag(c, prev, [])
      // While a log owes a proof, nothing of it is cosigned, not even a re-worded old tree.
      if (prev.cosignedText === c.text || failures.has(origin)) return
    } else if (prev !== undefined && prev.size > 0) {
      let proof: Uint8Array[]
      try {
        proof = await components.consistencyProof(peerIdOf(c.logKey), origin, prev.size, c.checkpoint.size)
      } catch (err) {
        // This witness knows no address for the log's node: it could not ask, which says nothing
        // about the log. Not cosigned (nothing was proven), not reported as unresponsive either.
        if ((err as Error).name === 'LogUnreachableError') {
          log.debug({ origin, err: (err as Error).message }, 'log not reachable from this witness: not cosigned')
          return
        }
        return await fail(c, prev, (err as Error).message)
      }
      let roots
      try {
        roots = consistencyRoots(prev.size, c.checkpoint.size, proof)
      } catch (err) {
        return await fail(c, prev, `malformed proof: ${(err as Error).message}`)
      }
      if (!Buffer.from(roots.newRoot).equals(c.checkpoint.rootHash)) return await fail(c, prev, 'the proof does not lead to the new checkpoint')
      if (Buffer.from(roots.oldRoot).toString('base64') !== prev.root) return await flag(c, prev, proof)
    }
    // Trust on first sight, then only consistent growth.
    const next: Seen = { size: c.checkpoint.size, root, note: c.note, cosignedText: c.text }
    seen.set(origin, next)
    await seenDb.put(origin, JSON.stringify(next))
    if (failures.delete(origin)) {
      await failDb.del(origin)
      log.info({ origin }, 'log answers proof requests again')
    }
    await cosign(c)
  }

  /** One check per log at a time; while busy only the newest checkpoint waits. */
  async function enqueue (c: VerifiedCheckpoint): Promise<void> {
    const origin = c.checkpoint.origin
    if (busy.has(origin)) {
      const waiting = busy.get(origin)
      if (waiting == null || waiting.checkpoint.size <= c.checkpoint.size) busy.set(origin, c)
      return
    }
    busy.set(origin, null)
    let next: VerifiedCheckpoint | null = c
    try {
      while (next !== null) {
        await witness(next).catch((err: unknown) => { log.warn({ err, origin }, 'witnessing a checkpoint failed') })
        next = busy.get(origin) ?? null
        busy.set(origin, null)
      }
    } finally {
      busy.delete(origin)
    }
  }

  return {
    name,
    vkey,
    async start () {
      await db.open()
      for await (const [k, v] of seenDb.iterator()) seen.set(k, JSON.parse(v) as Seen)
      for await (const [k, v] of splitDb.iterator()) split.set(k, JSON.parse(v) as SplitViewRecord)
      for await (const [k, v] of failDb.iterator()) failures.set(k, JSON.parse(v) as UnresponsiveLog)
    },
    async stop () {
      await db.close()
    },
    validate (data) {
      try {
        return { verdict: 'accept', checkpoint: decodeCheckpointMessage(data) }
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'checkpoint message rejected')
        return { verdict: 'reject' }
      }
    },
    async receive (data, checked) {
      const c = checked ?? decodeCheckpointMessage(data)
      const own = components.log
      if (own !== undefined && c.checkpoint.origin === own.origin) {
        await own.addCosignatures(c.text, c.cosignatures.map(s => s.line))
        return
      }
      if (c.logKeyId === identity.keyId) return
      await enqueue(c)
    },
    async publishOwn (note) {
      const own = components.log
      if (own === undefined) return
      // A fresh checkpoint carries only the log's signature: its key is all a receiver needs.
      await components.publish(encodeCheckpointMessage(note, [own.vkey]))
    },
    splitViews: async () => [...split.values()],
    unresponsive: () => [...failures.values()].map(f => ({ ...f })),
    stats: () => ({
      logs: seen.size,
      cosigned,
      unresponsive: [...failures.values()].map(f => ({ ...f })),
      splitViews: [...split.values()].map(s => s.logKeyId)
    })
  }
}
