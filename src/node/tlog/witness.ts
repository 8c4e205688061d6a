/**
 * The node as a witness of every other node's log (C2SP tlog-witness semantics over
 * libp2p): for each origin it keeps the newest checkpoint it verified; a newer one is
 * cosigned (C2SP tlog-cosignature) only after a consistency proof fetched from the log's own
 * node shows it extends the old one. Two signed checkpoints that cannot both hold are kept as
 * a split-view proof and the log is flagged. A log that does not answer, or answers with a
 * proof that proves nothing, is reported and not cosigned. Cosignatures of this node's own
 * checkpoints, gossiped by other witnesses, are handed to the log.
 *
 * Gossip alone can leave a witness behind: a checkpoint dropped by the admission rate stays in
 * gossipsub's seen cache, so no copy of it arrives later, and a log whose proof could not be had
 * announces nothing new once idle. So a witness that is behind fetches the log's newest
 * checkpoint from the log's node itself, soon after a throttled checkpoint and then with a
 * growing delay while it stays behind; and a throttled message from a peer makes the node fetch
 * that peer's newest cosignature of its own log too.
 */
import { createHash } from 'node:crypto'
import { Level } from 'level'
import { cosignatureLine } from '../../protocol/tlog/cosignature.js'
import { witnessName } from '../../protocol/tlog/entry.js'
import type { Checkpoint } from '../../protocol/tlog/checkpoint.js'
import { decodeCheckpointMessage, encodeCheckpointMessage, type VerifiedCheckpoint } from '../../protocol/tlog/gossip.js'
import { ALG_COSIGNATURE_V1, formatNote, formatVerifierKey, parseNote } from '../../protocol/tlog/note.js'
import { consistencyRoots, isPowerOfTwo } from '../../protocol/tlog/proof.js'
import type { SplitViewProof } from '../../protocol/tlog/split-view.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { keyOfPeerId, peerIdOf } from '../p2p/identity.js'
import { keyIdOf } from '../../protocol/keys.js'
import { logOrigin } from '../../protocol/tlog/entry.js'
import { TlogFetchError } from './errors.js'
import { createPushBudget, type PushBudgetInit } from './push-budget.js'
import type { TransparencyLog } from './types.js'

/** Logs a node witnesses at most; beyond it new origins are ignored. */
const MAX_LOGS = 1024
/** Peers whose messages are to be fetched again (their log's newest checkpoint, their cosignature of this node's log), at most. */
const MAX_PENDING_PEERS = 256
/** Distinct trees of one size kept waiting per log while it is checked (each is evidence of a fork). */
const MAX_WAITING_ROOTS = 4
/** A throttled checkpoint is fetched again this soon (one fetch for a burst of throttled messages). */
const DEFAULT_REFETCH_MS = 500
/** A witness still behind fetches the log's newest checkpoint again after this, doubling up to the maximum. */
const DEFAULT_RETRY_MS = 2_000
const DEFAULT_MAX_RETRY_MS = 60_000
/** Tries of one push of the own checkpoint to one witness (then the next checkpoint's push asks again). */
const PUSH_ATTEMPTS = 6
/** Witnesses sampled per log (`w`). */
export const DEFAULT_SAMPLED_WITNESSES = 8
/** The sample changes once a week: a new witness trusts its first checkpoint on sight. */
export const DEFAULT_SAMPLE_EPOCH_MS = 7 * 24 * 3600_000
/** Keys of logs known as candidate witnesses, at most (32 bytes of key id each). */
const MAX_CANDIDATES = 65_536
/** A log's newest checkpoint is under-witnessed once it has waited this long without `w` cosignatures. */
const DEFAULT_WITNESS_GRACE_MS = 30_000

/**
 * The rendezvous score of a witness for a log in an epoch: the sampled witnesses of a log are
 * the `w` candidates with the smallest scores. Anyone holding the two public keys and the epoch
 * computes it, so a cosignature from a witness far down the ranking is visible as such; a log
 * cannot choose its witnesses, and a witness cannot choose its logs (a new key scores at random).
 */
export function sampleScore (logKeyId: string, witnessKeyId: string, epoch: number): Buffer {
  return createHash('sha256').update(`neko-rebuilder/witness-sample/1\n${logKeyId}\n${witnessKeyId}\n${epoch}\n`).digest()
}

/** The `w` candidates (other than the log itself) with the smallest score for `logKeyId`. */
export function sampledWitnesses (logKeyId: string, candidates: Iterable<string>, w: number, epoch: number): string[] {
  const scored: Array<{ keyId: string, score: Buffer }> = []
  for (const keyId of candidates) if (keyId !== logKeyId) scored.push({ keyId, score: sampleScore(logKeyId, keyId, epoch) })
  scored.sort((a, b) => Buffer.compare(a.score, b.score))
  return scored.slice(0, w).map(s => s.keyId)
}

export interface WitnessComponents {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  /** Told of every verified checkpoint of another log that reaches this witness (gossiped, pushed or fetched): a network log enters the heads it sees. */
  seen?: (checkpoint: VerifiedCheckpoint) => void
  identity: SigningIdentity
  /** This node's own log, which receives cosignatures of its checkpoints. */
  log?: TransparencyLog
  publish: (data: Uint8Array) => Promise<unknown>
  /** Fetches an RFC 6962 consistency proof from the node with `peerId`. */
  consistencyProof: (peerId: string, origin: string, oldSize: number, newSize: number) => Promise<Uint8Array[]>
  /** Fetches the newest checkpoint message the node with `peerId` holds for `origin` (unchecked); without it nothing is fetched again. */
  checkpoint?: (peerId: string, origin: string) => Promise<Uint8Array>
  /** Peers connected now: a dropped message may have been relayed from any of them. */
  connected?: () => string[]
  /**
   * What this node's trust policy asks of it as a witness: when the policy names this node's
   * key among its `witnesses`, every log of a builder it names (`logs`, key ids) is witnessed
   * whatever the sample says, and each such witness counts as expected on the own log.
   */
  policy?: () => { witnesses: ReadonlySet<string>, builders: ReadonlySet<string> }
  /**
   * Hands this node's checkpoint message to the witness with `peerId` and returns its answer
   * (tlog-push.ts). With it, own checkpoints go to the sampled witnesses only and cosignatures
   * come back in the answer: neither is gossiped. Without it both are gossiped (`publish`).
   */
  push?: (peerId: string, message: Uint8Array) => Promise<Uint8Array>
}

export interface WitnessInit {
  /** Directory of the witness's LevelDB database. */
  path: string
  /** How soon a throttled checkpoint is fetched again (ms, default 500). */
  refetchMs?: number
  /** First delay before a witness still behind fetches the log's newest checkpoint again (ms, default 2 s), doubling up to `maxRetryMs` (default 60 s). */
  retryMs?: number
  maxRetryMs?: number
  /** Witnesses sampled per log, `w` (default 8); 0 witnesses every log (up to 1,024), as before sampling. */
  witnesses?: number
  /** Length of a sampling epoch (ms, default one week). */
  epochMs?: number
  /** How long a log's newest checkpoint may wait for its `w` cosignatures before it is reported under-witnessed (ms, default 30 s). */
  witnessGraceMs?: number
  /**
   * When the own log's checkpoints are pushed to its witnesses (push-budget.ts): a token bucket
   * that entries and time fill and each round empties by `2 x witnesses`; a checkpoint waiting
   * for tokens is superseded by the next. `false` pushes every checkpoint at once.
   */
  pushBudget?: PushBudgetInit | false
}

/** A log whose newest checkpoint has fewer cosignatures than its sampled witnesses (and policy witnesses) should give. */
export interface UnderWitnessedLog {
  origin: string
  logKeyId: string
  size: number
  /** Key ids of the witnesses whose cosignature of this size arrived. */
  cosigners: string[]
  /** How many were expected: `w` (or every other known log, when fewer), plus the policy's witnesses outside the sample. */
  expected: number
  /** Expected witnesses (sampled or named by the policy) that have not cosigned it. */
  missing: string[]
  /** ISO time the checkpoint of this size was first seen. */
  since: string
}

/** Why a witness has not cosigned a log's newest checkpoint. */
export type BehindReason = 'throttled' | 'proof refused' | 'unreachable'

/** A log whose newest checkpoint this witness has not cosigned, and why. */
export interface BehindLog {
  origin: string
  logKeyId: string
  /** The size this witness last cosigned, and the largest size it has seen signed by the log. */
  cosignedSize: number
  seenSize: number
  reason: BehindReason
  /** ISO time it fell behind. */
  since: string
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
  /** Logs whose newest checkpoint this witness has not cosigned yet, and why. */
  behind: BehindLog[]
  /** Key ids of logs proven to have shown two views. */
  splitViews: string[]
  /** Logs this node knows (candidates for the sample), and the logs it witnesses by the sample or its policy. */
  candidates: number
  sampled: number
  /** `w`, and this node's own log when its newest checkpoint lacks its expected witnesses past the grace period. */
  witnessesPerLog: number
  underWitnessed: UnderWitnessedLog[]
  /** Own checkpoints pushed to the witnesses, and those superseded while they waited for the push budget. */
  pushRounds: number
  coalesced: number
  /** The size of the newest own checkpoint pushed (-1 before the first), and of the one waiting for the push budget, if one waits. */
  pushedSize: number
  waitingSize?: number
}

/** A checkpoint submitted over C2SP tlog-witness, its log's signature already checked by the caller with a key it trusts. */
export interface SubmittedCheckpoint {
  note: string
  text: string
  checkpoint: Checkpoint
  logKeyId: string
}

/**
 * The answer to a C2SP tlog-witness `add-checkpoint`: 200 with the cosignature lines, 409 with
 * the size this witness last cosigned, 400 or 422 with the reason.
 */
export type AddCheckpointResult = { status: 200, lines: string[] } | { status: 409, size: number, reason: string } | { status: 400 | 422, reason: string }

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
  /**
   * C2SP tlog-witness `add-checkpoint`: cosigns `c` only if `oldSize` is the size this witness
   * last cosigned of the log and `proof` (RFC 6962) leads from that tree to `c`. Checked and
   * persisted under the log's lock, shared with witnessing over gossip.
   */
  addCheckpoint: (c: SubmittedCheckpoint, oldSize: number, proof: readonly Uint8Array[]) => Promise<AddCheckpointResult>
  splitViews: () => Promise<SplitViewRecord[]>
  /** Logs that stopped answering proof requests (or answered with nothing that proves). */
  unresponsive: () => UnresponsiveLog[]
  /** Logs whose newest checkpoint this witness has not cosigned yet, and why. */
  behind: () => BehindLog[]
  /** A checkpoint message delivered by `peer` was dropped by the admission rate: fetch again what it may have carried. */
  throttled: (peer: string) => void
  /** The newest checkpoint message this node holds for `origin` (its own log's, or its newest cosignature of another), or why none. */
  newest: (origin: string) => Uint8Array | string
  /**
   * A peer connected: its log's newest checkpoint (when this node witnesses it) and its
   * cosignature of this node's log are fetched from it, since nothing is re-announced on a timer.
   */
  met: (peer: string) => void
  /** A checkpoint the log's node `from` pushed to this witness: the cosigned message, or why not. */
  pushed: (data: Uint8Array, from: string) => Promise<Uint8Array | string>
  /** Whether this node witnesses the log with this key now (sampled, or named by its policy). */
  witnesses: (logKeyId: string) => boolean
  /** This node's own log, when its newest checkpoint lacks its expected witnesses past the grace period (witnesses answer the log's node alone, so only it sees every cosignature). */
  underWitnessed: () => UnderWitnessedLog[]
  stats: () => WitnessStats
}

interface Seen { size: number, root: string, note: string, cosignedText?: string }
/** When to fetch a log's newest checkpoint from its node again; `throttled`: because a message from it was dropped. */
interface Chase { peer: string, at: number, delayMs: number, throttled: boolean }

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
  // origin → checkpoints waiting while one of the log is checked: the newest size, one per
  // distinct root of that size (two roots of one size are a split view: neither may supersede
  // the other); [] while none waits.
  const busy = new Map<string, VerifiedCheckpoint[]>()
  const draining = new Map<string, Promise<void>>() // origin → the check running now, until its queue is empty
  let cosigned = 0
  const refetchMs = init.refetchMs ?? DEFAULT_REFETCH_MS
  const retryMs = init.retryMs ?? DEFAULT_RETRY_MS
  const maxRetryMs = init.maxRetryMs ?? DEFAULT_MAX_RETRY_MS
  // What is known of each witnessed log (as many as `seen` may hold): its node, the largest
  // size it signed that arrived here, and this witness's newest cosignature of it.
  const logs = new Map<string, { peer: string, logKeyId: string, seenSize: number, cosignedMessage?: Buffer }>()
  const byPeer = new Map<string, string>() // log's node → origin
  const behind = new Map<string, { logKeyId: string, reason: BehindReason, since: string }>()
  const chases = new Map<string, Chase>() // origin → next fetch of its newest checkpoint
  const fetching = new Set<string>() // origins (and `peer:` peers) with a fetch in flight
  const peerChases = new Map<string, number>() // peer → when to fetch its log's newest checkpoint (if not witnessed yet) and its cosignature of the own log
  let ticker: NodeJS.Timeout | undefined
  let stopped = false
  // Size of the newest own checkpoint pushed: an older push stops asking once a newer one goes out.
  let pushedSize = -1
  // The newest own checkpoint pushed (served to witnesses that fetch it), and the one waiting
  // for the push budget (or for a witness to become known).
  let pushedMessage: Buffer | undefined
  let waiting: { message: Buffer, checked: VerifiedCheckpoint } | undefined
  let waitTimer: NodeJS.Timeout | undefined
  let pushRounds = 0
  let coalesced = 0
  // Time earns a round to the full sample (2w) per floor: the same exchanges per log whatever the network's size.
  const budget = init.pushBudget === false ? undefined : createPushBudget({ floorTokens: 2 * (init.witnesses || DEFAULT_SAMPLED_WITNESSES), ...init.pushBudget })
  let lastSweep = 0
  // origin → the tail of the checks queued on it: one check and persist at a time per log,
  // whether the checkpoint came by gossip or over HTTP (C2SP tlog-witness asks for atomicity).
  const locks = new Map<string, Promise<unknown>>()

  async function locked<T> (origin: string, fn: () => Promise<T>): Promise<T> {
    const run = (locks.get(origin) ?? Promise.resolve()).then(fn)
    const tail = run.catch(() => {})
    locks.set(origin, tail)
    try {
      return await run
    } finally {
      if (locks.get(origin) === tail) locks.delete(origin)
    }
  }

  const w = init.witnesses ?? DEFAULT_SAMPLED_WITNESSES
  const epochMs = init.epochMs ?? DEFAULT_SAMPLE_EPOCH_MS
  const graceMs = init.witnessGraceMs ?? DEFAULT_WITNESS_GRACE_MS
  if (!Number.isSafeInteger(w) || w < 0) throw new TypeError(`witnesses must be a non-negative integer, got ${String(w)}`)
  if (!Number.isSafeInteger(epochMs) || epochMs < 1) throw new TypeError(`epochMs must be a positive integer, got ${String(epochMs)}`)
  // Key ids of the logs this node has seen a verified checkpoint or cosignature of: the
  // candidates of every log's sample. Every node sees the same checkpoint gossip, so their
  // sets, and so their samples, agree once gossip has reached them.
  const candidates = new Map<string, string>([[identity.keyId, peerIdOf(identity.publicKey)]]) // key id → its node's peer id
  const decisions = new Map<string, { epoch: number, known: number, yes: boolean }>()
  // The own log's newest size and who cosigned it (for under-witnessed reports): only the log's
  // node sees every cosignature, since witnesses answer it directly.
  const witnessing = new Map<string, { logKeyId: string, size: number, cosigners: Set<string>, since: number }>()
  const expectedCache = new Map<string, { epoch: number, known: number, keys: string[] }>()
  const epochNow = (): number => Math.floor(Date.now() / epochMs)

  function addCandidate (keyId: string, peer: string): void {
    if (candidates.size < MAX_CANDIDATES || candidates.has(keyId)) candidates.set(keyId, peer)
  }

  function addPeer (peer: string): void {
    try { addCandidate(keyIdOf(keyOfPeerId(peer)), peer) } catch { /* not an Ed25519 peer: it keeps no log */ }
  }

  /** This node's policy names it as a witness, and names the log's key as a builder. */
  function named (logKeyId: string): boolean {
    const p = components.policy?.()
    return p !== undefined && p.witnesses.has(identity.keyId) && p.builders.has(logKeyId)
  }

  /** Whether this witness is among the `w` lowest scores for the log among the candidates it knows. */
  function witnessesLog (logKeyId: string): boolean {
    if (w === 0 || named(logKeyId)) return true
    const epoch = epochNow()
    const d = decisions.get(logKeyId)
    if (d !== undefined && d.epoch === epoch && d.known === candidates.size) return d.yes
    const own = sampleScore(logKeyId, identity.keyId, epoch)
    let below = 0
    for (const keyId of candidates.keys()) {
      if (keyId === logKeyId || keyId === identity.keyId) continue
      if (Buffer.compare(sampleScore(logKeyId, keyId, epoch), own) < 0 && ++below >= w) break
    }
    const yes = below < w
    if (d === undefined && decisions.size >= MAX_LOGS * 4) decisions.clear()
    decisions.set(logKeyId, { epoch, known: candidates.size, yes })
    return yes
  }

  /** Who should cosign the log: its sample, and the policy's witnesses when they witness the log's builder. */
  function expectedOf (logKeyId: string): string[] {
    const epoch = epochNow()
    const cached = expectedCache.get(logKeyId)
    let keys = cached !== undefined && cached.epoch === epoch && cached.known === candidates.size ? cached.keys : undefined
    if (keys === undefined) {
      keys = w === 0 ? [...candidates.keys()].filter(k => k !== logKeyId) : sampledWitnesses(logKeyId, candidates.keys(), w, epoch)
      if (expectedCache.size >= MAX_LOGS * 2) expectedCache.clear()
      expectedCache.set(logKeyId, { epoch, known: candidates.size, keys })
    }
    const p = components.policy?.()
    const own = logKeyId === identity.keyId
    const extra = p === undefined || (!own && !p.builders.has(logKeyId)) ? [] : [...p.witnesses].filter(k => k !== logKeyId && !keys.includes(k))
    return [...keys, ...extra]
  }

  /** Notes who cosigned the newest size of this node's own log. */
  function track (c: VerifiedCheckpoint): void {
    const origin = c.checkpoint.origin
    let t = witnessing.get(origin)
    if (t === undefined) {
      t = { logKeyId: c.logKeyId, size: -1, cosigners: new Set(), since: 0 }
      witnessing.set(origin, t)
    }
    if (c.checkpoint.size < t.size) return
    if (c.checkpoint.size > t.size) {
      t.size = c.checkpoint.size
      t.cosigners = new Set()
      t.since = Date.now()
    }
    for (const s of c.cosignatures) t.cosigners.add(s.keyId)
  }

  function underWitnessed (): UnderWitnessedLog[] {
    const now = Date.now()
    const out: UnderWitnessedLog[] = []
    for (const [origin, t] of witnessing) {
      if (now - t.since < graceMs || split.has(origin)) continue
      const expected = expectedOf(t.logKeyId)
      const missing = expected.filter(k => !t.cosigners.has(k))
      // Other witnesses may stand in for absent sampled ones (their views of the candidates
      // differ for a while), but not for a witness the policy names.
      const policyWitnesses = components.policy?.().witnesses
      if (t.cosigners.size >= expected.length && !missing.some(k => policyWitnesses?.has(k) === true)) continue
      out.push({ origin, logKeyId: t.logKeyId, size: t.size, cosigners: [...t.cosigners], expected: expected.length, missing, since: new Date(t.since).toISOString() })
    }
    return out
  }

  const cosignedSizeOf = (origin: string): number => seen.get(origin)?.size ?? 0

  /** Says once per log and reason that this witness is behind on it. */
  function fallBehind (origin: string, reason: BehindReason): void {
    const known = logs.get(origin)
    if (known === undefined) return
    const was = behind.get(origin)
    if (was?.reason === reason) return
    behind.set(origin, { logKeyId: known.logKeyId, reason, since: was?.since ?? new Date().toISOString() })
    log.info({ origin, cosignedSize: cosignedSizeOf(origin), seenSize: Math.max(known.seenSize, cosignedSizeOf(origin)), reason }, `witness behind on a log (${reason})`)
  }

  function caughtUp (origin: string): void {
    chases.delete(origin)
    if (!behind.delete(origin)) return
    log.info({ origin, cosignedSize: cosignedSizeOf(origin) }, 'witness caught up with a log')
  }

  /** Fetches the log's newest checkpoint `soon` (after a throttled message), or after the next backoff step. */
  function chase (origin: string, soon = false): void {
    const known = logs.get(origin)
    if (known === undefined || split.has(origin)) return
    const prev = chases.get(origin)
    const delayMs = soon ? refetchMs : prev === undefined ? retryMs : Math.min(prev.delayMs * 2, maxRetryMs)
    const at = Date.now() + delayMs
    if (prev !== undefined && soon && prev.at <= at) return
    chases.set(origin, { peer: known.peer, at, delayMs: soon ? prev?.delayMs ?? retryMs / 2 : delayMs, throttled: soon })
  }

  /** A fetched checkpoint message, checked as gossip is; one of another log counts as a refusal. */
  function fetched (data: Uint8Array, origin: string): VerifiedCheckpoint {
    const check = decodeCheckpointMessage(data)
    if (check.checkpoint.origin !== origin) throw new TlogFetchError(`asked for ${origin.slice(0, 120)}, got ${check.checkpoint.origin.slice(0, 120)}`)
    return check
  }

  async function fetchNewest (origin: string, c: Chase): Promise<void> {
    const fetch = components.checkpoint
    if (fetch === undefined) return
    try {
      const check = fetched(await fetch(c.peer, origin), origin)
      // A dropped message is only known to have left the witness behind once something newer turns up.
      const known = logs.get(origin)
      if (c.throttled && known !== undefined && check.checkpoint.size > Math.max(known.seenSize, cosignedSizeOf(origin))) {
        known.seenSize = check.checkpoint.size
        fallBehind(origin, 'throttled')
      }
      await receiveChecked(check)
    } catch (err) {
      const failure = (err as { failure?: unknown }).failure === 'unreachable' ? 'unreachable' : 'proof refused'
      log.debug({ origin, err: (err as Error).message }, 'fetching the newest checkpoint of a log failed')
      fallBehind(origin, failure)
      chase(origin)
      return
    }
    // Nothing newer than what this witness cosigned: it is not behind after all.
    const known = logs.get(origin)
    if (!failures.has(origin) && known !== undefined && cosignedSizeOf(origin) >= known.seenSize && (busy.get(origin)?.length ?? 0) === 0) caughtUp(origin)
  }

  /** Fetches soon what a message from `peer` may have carried. */
  function refetchFrom (peer: string): void {
    const origin = byPeer.get(peer)
    if (origin !== undefined) chase(origin, true)
    if ((origin === undefined || components.log !== undefined) && (peerChases.has(peer) || peerChases.size < MAX_PENDING_PEERS)) {
      peerChases.set(peer, Math.min(peerChases.get(peer) ?? Number.POSITIVE_INFINITY, Date.now() + refetchMs))
    }
  }

  /**
   * What a throttled message from `peer` may have carried besides a checkpoint of a log this
   * witness already follows: the first checkpoint of the peer's own log, and the peer's
   * cosignature of this node's log. A peer that keeps no log answers nothing: not reported.
   */
  async function fetchFromPeer (peer: string): Promise<void> {
    const fetch = components.checkpoint
    if (fetch === undefined) return
    const origins: string[] = []
    if (!byPeer.has(peer) && logs.size < MAX_LOGS) {
      try { origins.push(logOrigin(keyIdOf(keyOfPeerId(peer)))) } catch { /* not an Ed25519 peer: it keeps no log */ }
    }
    if (components.log !== undefined) origins.push(components.log.origin)
    for (const origin of origins) {
      try {
        await receiveChecked(fetched(await fetch(peer, origin), origin))
      } catch (err) {
        log.debug({ peer, origin, err: (err as Error).message }, 'fetching a checkpoint message from a peer failed')
      }
    }
  }

  function tick (): void {
    const now = Date.now()
    for (const [origin, c] of chases) {
      if (c.at > now || fetching.has(origin)) continue
      c.at = Number.POSITIVE_INFINITY // until the fetch says what next
      fetching.add(origin)
      void fetchNewest(origin, c).finally(() => {
        fetching.delete(origin)
        if (chases.get(origin)?.at === Number.POSITIVE_INFINITY) chases.delete(origin)
      })
    }
    for (const [peer, at] of peerChases) {
      const key = `peer:${peer}`
      if (at > now || fetching.has(key)) continue
      peerChases.delete(peer)
      fetching.add(key)
      void fetchFromPeer(peer).finally(() => fetching.delete(key))
    }
  }

  async function fail (c: VerifiedCheckpoint, prev: Seen, reason: string, failure: BehindReason = 'proof refused'): Promise<void> {
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
    fallBehind(origin, failure)
    chase(origin)
  }

  async function flag (c: Pick<VerifiedCheckpoint, 'checkpoint' | 'logKeyId' | 'note'>, prev: Seen, proof: readonly Uint8Array[]): Promise<void> {
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
    const message = encodeCheckpointMessage(formatNote(c.text, [c.logLine, line]), [c.logVkey, vkey])
    const known = logs.get(c.checkpoint.origin)
    if (known !== undefined) known.cosignedMessage = message
    if (c.checkpoint.size >= (known?.seenSize ?? 0)) caughtUp(c.checkpoint.origin)
    // Pushed checkpoints get their cosignature in the answer; gossip carries it only without push.
    if (components.push === undefined) await components.publish(message)
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
      if (failures.has(origin)) return
      if (prev.cosignedText === c.text) {
        if ((logs.get(origin)?.seenSize ?? 0) <= prev.size) caughtUp(origin)
        return
      }
    } else if (prev !== undefined && prev.size > 0) {
      let proof: Uint8Array[]
      try {
        proof = await components.consistencyProof(peerIdOf(c.logKey), origin, prev.size, c.checkpoint.size)
      } catch (err) {
        // This witness knows no address for the log's node: it could not ask, which says nothing
        // about the log. Not cosigned (nothing was proven), not reported as unresponsive either.
        if ((err as Error).name === 'LogUnreachableError') {
          log.debug({ origin, err: (err as Error).message }, 'log not reachable from this witness: not cosigned')
          fallBehind(origin, 'unreachable')
          chase(origin)
          return
        }
        return await fail(c, prev, (err as Error).message, (err as { failure?: unknown }).failure === 'unreachable' ? 'unreachable' : 'proof refused')
      }
      let roots
      try {
        roots = consistencyRoots(prev.size, c.checkpoint.size, proof, Buffer.from(prev.root, 'base64'))
      } catch (err) {
        return await fail(c, prev, `malformed proof: ${(err as Error).message}`)
      }
      // From a power-of-two size the proof leaves the old root out (RFC 6962): a fork there
      // shows as a proof that does not lead to the new root, not as a split-view proof.
      if (!Buffer.from(roots.newRoot).equals(c.checkpoint.rootHash)) return await fail(c, prev, `the proof does not lead to the new checkpoint${isPowerOfTwo(prev.size) ? ' from the root this witness cosigned' : ''}`)
      if (Buffer.from(roots.oldRoot).toString('base64') !== prev.root) return await flag(c, prev, proof)
    }
    // Trust on first sight, then only consistent growth.
    await keepCosigned(origin, { size: c.checkpoint.size, root, note: c.note, cosignedText: c.text })
    await cosign(c)
  }

  /**
   * Keeps `next` as the tree of `origin` this witness cosigns, before anything is signed; a log
   * that proved its growth answers proof requests again, whichever way the proof came (over
   * libp2p or C2SP add-checkpoint). `sync`: the write is on disk before this returns.
   */
  async function keepCosigned (origin: string, next: Seen, sync = false): Promise<void> {
    const answered = failures.has(origin)
    await db.batch([
      { type: 'put', sublevel: seenDb, key: origin, value: JSON.stringify(next) },
      ...(answered ? [{ type: 'del' as const, sublevel: failDb, key: origin }] : [])
    ], { sync })
    seen.set(origin, next)
    if (answered) {
      failures.delete(origin)
      log.info({ origin }, 'log answers proof requests again')
    }
  }

  async function addCheckpoint (c: SubmittedCheckpoint, oldSize: number, proof: readonly Uint8Array[]): Promise<AddCheckpointResult> {
    const origin = c.checkpoint.origin
    const size = c.checkpoint.size
    if (oldSize > size) return { status: 400, reason: `old size ${oldSize} exceeds the checkpoint's size ${size}` }
    return await locked(origin, async (): Promise<AddCheckpointResult> => {
      const prev = seen.get(origin)
      const prevSize = prev?.size ?? 0
      if (split.has(origin)) return { status: 409, size: prevSize, reason: 'this witness holds a split-view proof of this log and cosigns none of its checkpoints' }
      if (oldSize !== prevSize) return { status: 409, size: prevSize, reason: `this witness last cosigned the tree of size ${prevSize}` }
      const root = Buffer.from(c.checkpoint.rootHash).toString('base64')
      if (oldSize === size && prev !== undefined && prev.root !== root) {
        await flag(c, prev, [])
        return { status: 409, size: prevSize, reason: 'another tree of the size this witness cosigned: a split view' }
      }
      if ((oldSize === 0 || oldSize === size) && proof.length > 0) return { status: 422, reason: `the proof must be empty from size ${oldSize} to ${size}` }
      if (prev !== undefined && oldSize > 0 && oldSize < size) {
        let roots
        try {
          roots = consistencyRoots(oldSize, size, proof, Buffer.from(prev.root, 'base64'))
        } catch (err) {
          return { status: 422, reason: `malformed proof: ${(err as Error).message}` }
        }
        if (!Buffer.from(roots.newRoot).equals(c.checkpoint.rootHash)) return { status: 422, reason: `the proof does not lead from the tree of size ${oldSize} this witness cosigned to the checkpoint's root` }
        if (Buffer.from(roots.oldRoot).toString('base64') !== prev.root) {
          await flag(c, prev, proof)
          return { status: 422, reason: 'the proof leads to another tree of the size this witness cosigned: a split view' }
        }
      }
      // Persisted, synced, before anything is signed: a crash before this leaves no cosignature
      // out; one after it leaves this tree the only one of its size this witness will cosign.
      await keepCosigned(origin, { size, root, note: c.note, cosignedText: c.text }, true)
      if (size >= (logs.get(origin)?.seenSize ?? 0)) caughtUp(origin)
      cosigned++
      return { status: 200, lines: [cosignatureLine(c.text, name, identity.privateKey, Math.floor(Date.now() / 1000))] }
    })
  }

  /** `chosen`: the log's node pushed it here itself, so this witness is one it sampled. */
  async function receiveChecked (c: VerifiedCheckpoint, chosen = false): Promise<void> {
    const own = components.log
    const origin = c.checkpoint.origin
    addCandidate(c.logKeyId, peerIdOf(c.logKey))
    for (const s of c.cosignatures) addCandidate(s.keyId, peerIdOf(s.publicKey))
    if (own === undefined || origin !== own.origin) components.seen?.(c)
    if (own !== undefined && origin === own.origin) {
      track(c)
      await own.addCosignatures(c.text, c.cosignatures.map(s => s.line))
      return
    }
    if (c.logKeyId === identity.keyId) return
    // Nobody witnesses everybody: a log outside this witness's sample is left to its own.
    if (!chosen && !witnessesLog(c.logKeyId)) return
    let known = logs.get(origin)
    if (known === undefined && logs.size < MAX_LOGS) {
      const peer = peerIdOf(c.logKey)
      known = { peer, logKeyId: c.logKeyId, seenSize: 0 }
      logs.set(origin, known)
      byPeer.set(peer, origin)
    }
    if (known !== undefined) known.seenSize = Math.max(known.seenSize, c.checkpoint.size)
    await enqueue(c)
  }

  /**
   * One check per log at a time. While busy, only the newest size waits, but every distinct
   * root of it does (a few at most): a copy of the honest tree arriving after a forged one of
   * the same size must not hide the fork.
   */
  async function enqueue (c: VerifiedCheckpoint): Promise<void> {
    const origin = c.checkpoint.origin
    const waiting = busy.get(origin)
    if (waiting !== undefined) {
      const size = waiting[0]?.checkpoint.size ?? -1
      if (c.checkpoint.size > size) busy.set(origin, [c])
      else if (c.checkpoint.size === size && waiting.length < MAX_WAITING_ROOTS && !waiting.some(w => Buffer.from(w.checkpoint.rootHash).equals(c.checkpoint.rootHash))) waiting.push(c)
      return
    }
    busy.set(origin, [])
    const run = (async () => {
      let next: VerifiedCheckpoint[] = [c]
      try {
        while (next.length > 0) {
          for (const n of next) await locked(origin, async () => { await witness(n) }).catch((err: unknown) => { log.warn({ err, origin }, 'witnessing a checkpoint failed') })
          next = busy.get(origin) ?? []
          busy.set(origin, [])
        }
      } finally {
        busy.delete(origin)
      }
    })()
    draining.set(origin, run)
    try { await run } finally { if (draining.get(origin) === run) draining.delete(origin) }
  }

  /**
   * Pushes the own checkpoint message to the log's sampled (and policy) witnesses; their answers
   * carry their cosignatures. Nothing re-announces a checkpoint on a timer, so a witness that
   * did not answer is asked again, with a growing delay, until it does or a newer checkpoint
   * goes out (whose own push carries on from there).
   */
  async function pushOwn (message: Buffer, size: number, targets: string[], push: (peerId: string, message: Uint8Array) => Promise<Uint8Array>): Promise<void> {
    const own = components.log
    if (own === undefined) return
    await Promise.all(targets.map(async (peer) => {
      let delayMs = retryMs
      for (let attempt = 1; ; attempt++) {
        try {
          const c = fetched(await push(peer, message), own.origin)
          if (c.cosignatures.length === 0) throw new TlogFetchError('the answer carries no cosignature')
          await receiveChecked(c)
          return
        } catch (err) {
          log.debug({ peer, attempt, err: (err as Error).message }, 'a witness did not cosign the pushed checkpoint')
        }
        if (attempt >= PUSH_ATTEMPTS) return
        await new Promise(resolve => setTimeout(resolve, delayMs).unref())
        delayMs = Math.min(delayMs * 2, maxRetryMs)
        if (stopped || pushedSize !== size) return
      }
    }))
  }

  /** The own log's witnesses' peer ids: its sample and the policy's witnesses that are known. */
  function ownTargets (): string[] {
    for (const peer of components.connected?.() ?? []) addPeer(peer)
    return expectedOf(identity.keyId).map(k => candidates.get(k)).filter(p => p !== undefined)
  }

  /**
   * Sends the waiting own checkpoint: pushed to the witnesses when the budget allows (or waiting
   * for time to earn it), gossiped at once where nothing is pushed.
   */
  async function flushOwn (): Promise<void> {
    const next = waiting
    if (next === undefined || stopped) return
    if (waitTimer !== undefined) clearTimeout(waitTimer)
    waitTimer = undefined
    const push = components.push
    let targets: string[] = []
    if (push !== undefined) {
      targets = ownTargets()
      // No witness known yet (a node that just started, or one cut off): it waits, and meeting a
      // peer pushes it; marked as pushed it would wait for the log's next growth.
      if (targets.length === 0) return
      if (budget !== undefined && !budget.take(next.checked.checkpoint.size, targets.length)) {
        waitTimer = setTimeout(() => { waitTimer = undefined; void flushOwn() }, Math.max(50, budget.waitMs(targets.length)))
        waitTimer.unref()
        return
      }
    }
    waiting = undefined
    track(next.checked)
    pushedSize = next.checked.checkpoint.size
    pushedMessage = next.message
    if (push === undefined) {
      await components.publish(next.message)
      return
    }
    pushRounds++
    await pushOwn(next.message, pushedSize, targets, push)
  }

  return {
    name,
    vkey,
    async start () {
      stopped = false
      await db.open()
      for await (const [k, v] of seenDb.iterator()) seen.set(k, JSON.parse(v) as Seen)
      for await (const [k, v] of splitDb.iterator()) split.set(k, JSON.parse(v) as SplitViewRecord)
      for await (const [k, v] of failDb.iterator()) failures.set(k, JSON.parse(v) as UnresponsiveLog)
      ticker = setInterval(tick, Math.max(20, Math.min(refetchMs, retryMs) / 2))
      ticker.unref()
    },
    async stop () {
      stopped = true
      clearInterval(ticker)
      ticker = undefined
      if (waitTimer !== undefined) clearTimeout(waitTimer)
      waitTimer = undefined
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
      await receiveChecked(checked ?? decodeCheckpointMessage(data))
    },
    async publishOwn (note) {
      const own = components.log
      if (own === undefined) return
      // A fresh checkpoint carries only the log's signature: its key is all a receiver needs.
      const message = encodeCheckpointMessage(note, [own.vkey])
      const checked = decodeCheckpointMessage(message)
      // Only the newest waits for the budget: an older one still waiting is superseded.
      if (waiting !== undefined) coalesced++
      waiting = { message, checked }
      await flushOwn()
    },
    addCheckpoint,
    splitViews: async () => [...split.values()],
    unresponsive: () => [...failures.values()].map(f => ({ ...f })),
    behind: behindLogs,
    throttled (peer) {
      refetchFrom(peer)
      // A relay's copy may have been the one dropped, and the author's own copy then went as a
      // duplicate: every connected peer is asked too, at most once per `retryMs`.
      const now = Date.now()
      if (components.connected === undefined || now - lastSweep < retryMs) return
      lastSweep = now
      for (const p of components.connected()) if (p !== peer) refetchFrom(p)
    },
    newest (origin) {
      const own = components.log
      if (own !== undefined && origin === own.origin) {
        // The one pushed last: a witness that missed its round (every push to it failed) catches
        // up with the round, and gets the next one with the others. Handing it a checkpoint the
        // budget holds back would pay for a cosignature outside any round.
        if (pushedMessage !== undefined) return pushedMessage
        const note = own.checkpoint()
        if (note === undefined) return 'the log has no checkpoint yet'
        // The log's signature alone: a cosignature line would need its witness's key alongside.
        const n = parseNote(note)
        const line = n.signatures.find(s => s.name === own.origin)?.line
        return line === undefined ? 'the log has no signed checkpoint' : encodeCheckpointMessage(formatNote(n.text, [line]), [own.vkey])
      }
      return logs.get(origin)?.cosignedMessage ?? `this node has cosigned no checkpoint of ${origin.slice(0, 120)}`
    },
    met (peer) {
      addPeer(peer)
      refetchFrom(peer)
      // A checkpoint that waited for a witness to be known goes now; one waiting for the budget stays.
      if (waiting !== undefined && waitTimer === undefined) void flushOwn()
    },
    async pushed (data, from) {
      let c: VerifiedCheckpoint
      try {
        c = decodeCheckpointMessage(data)
      } catch (err) {
        return `not a valid checkpoint message: ${(err as Error).message}`
      }
      const origin = c.checkpoint.origin
      // Only the log's own node chooses its witnesses; anyone else gossips or is ignored.
      if (peerIdOf(c.logKey) !== from) return 'a checkpoint is pushed by its log\'s own node'
      if (c.logKeyId === identity.keyId || origin === components.log?.origin) return 'this is the witness\'s own log'
      if (!logs.has(origin) && logs.size >= MAX_LOGS) return `this witness follows ${MAX_LOGS} logs already`
      await receiveChecked(c, true)
      await draining.get(origin)
      if (split.has(origin)) return 'the log has shown a split view: it is not cosigned again'
      const known = logs.get(origin)
      if (seen.get(origin)?.size === c.checkpoint.size && known?.cosignedMessage !== undefined) return known.cosignedMessage
      return failures.get(origin)?.lastError ?? 'not cosigned (yet): the check of an earlier checkpoint was still running'
    },
    witnesses: witnessesLog,
    underWitnessed,
    stats: () => ({
      logs: seen.size,
      cosigned,
      unresponsive: [...failures.values()].map(f => ({ ...f })),
      behind: behindLogs(),
      splitViews: [...split.values()].map(s => s.logKeyId),
      candidates: candidates.size,
      sampled: [...logs.values()].filter(l => witnessesLog(l.logKeyId)).length,
      witnessesPerLog: w,
      underWitnessed: underWitnessed(),
      pushRounds,
      coalesced,
      pushedSize,
      ...(waiting !== undefined ? { waitingSize: waiting.checked.checkpoint.size } : {})
    })
  }

  function behindLogs (): BehindLog[] {
    return [...behind].map(([origin, b]) => ({
      origin,
      logKeyId: b.logKeyId,
      cosignedSize: cosignedSizeOf(origin),
      seenSize: Math.max(logs.get(origin)?.seenSize ?? 0, cosignedSizeOf(origin)),
      reason: b.reason,
      since: b.since
    }))
  }
}
