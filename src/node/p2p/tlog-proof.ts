/**
 * The transparency-log exchanges between a witness and a log's node (C2SP tlog-witness
 * semantics over libp2p instead of HTTP), each one length-prefixed JSON request and one JSON
 * answer, bounded in size and time on both sides; the requester checks what it gets itself.
 *
 * - `/neko-rebuilder/tlog-proof/2.0.0`: `{"origin","oldSize","newSize"}` → `{"proof":[base64…]}`
 *   (RFC 6962 form, as C2SP tlog-witness carries it) or `{"error"}`. Version 1 sent a "full
 *   form" (the old tree's hash first even when its size is a power of two) no other tool takes.
 * - `/neko-rebuilder/tlog-checkpoint/1.0.0`: `{"origin"}` → the newest checkpoint message the
 *   node holds for that origin, as gossiped (`{"note","keys"}`): its own log's newest checkpoint,
 *   or its newest cosignature of another node's log; or `{"error"}`. It fetches again what
 *   gossip's admission rate dropped, and what a witness could not check in time.
 */
import { lpStream } from '@libp2p/utils'
import type { Libp2p, PeerId, StreamHandler } from '@libp2p/interface'
import { CHECKPOINT_MESSAGE_BYTES } from '../../protocol/tlog/gossip.js'
import { HASH_SIZE } from '../../protocol/tlog/hash.js'
import type { Logger } from '../logger.js'
import { LogUnreachableError, TlogProofError } from './errors.js'
import { openStream } from './nat.js'

export const TLOG_PROOF_PROTOCOL = '/neko-rebuilder/tlog-proof/2.0.0'
export const TLOG_CHECKPOINT_PROTOCOL = '/neko-rebuilder/tlog-checkpoint/1.0.0'

export interface ExchangeLimits {
  maxRequestBytes: number
  maxResponseBytes: number
  /** Whole exchange, dial to answer. */
  timeoutMs: number
  /** Requests served at once, across all peers. */
  maxConcurrentStreams: number
}

export const TLOG_PROOF_LIMITS = {
  /** Origin plus two integers in JSON. */
  maxRequestBytes: 512,
  /** 64 base64 hashes with JSON punctuation, or a short error. */
  maxResponseBytes: 64 * 48 + 256,
  timeoutMs: 5_000,
  maxConcurrentStreams: 4
} as const satisfies ExchangeLimits

export const TLOG_CHECKPOINT_LIMITS = {
  /** An origin in JSON. */
  maxRequestBytes: 512,
  /** One checkpoint message, as gossip bounds it. */
  maxResponseBytes: CHECKPOINT_MESSAGE_BYTES,
  timeoutMs: 5_000,
  maxConcurrentStreams: 4
} as const satisfies ExchangeLimits

/** What the log answers: a proof, or why not. */
export type ProofSource = (origin: string, oldSize: number, newSize: number) => Promise<Uint8Array[] | string> | Uint8Array[] | string

/** The newest checkpoint message the node holds for `origin`, or why none. */
export type CheckpointSource = (origin: string) => Promise<Uint8Array | string> | Uint8Array | string

const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** Serves one JSON request with one JSON answer (or raw bytes `respond` returns as they are). */
export function jsonHandler (limits: ExchangeLimits, respond: (req: Record<string, unknown>, peer: string) => Promise<unknown>, log: Logger): StreamHandler {
  let active = 0
  return async (stream, connection) => {
    const signal = AbortSignal.timeout(limits.timeoutMs)
    const lp = lpStream(stream, { maxDataLength: limits.maxRequestBytes })
    const answer = async (value: unknown): Promise<void> => {
      await lp.write(value instanceof Uint8Array ? value : Buffer.from(JSON.stringify(value), 'utf8'), { signal })
      await stream.close({ signal })
    }
    try {
      if (active >= limits.maxConcurrentStreams) return await answer({ error: 'busy' })
      active++
      try {
        const req = JSON.parse(Buffer.from((await lp.read({ signal })).subarray()).toString('utf8')) as unknown
        await answer(await respond(typeof req === 'object' && req !== null ? req as Record<string, unknown> : {}, connection.remotePeer.toString()))
      } finally {
        active--
      }
    } catch (err) {
      log.debug({ err }, 'a tlog stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** Sends one JSON request to `peer` and reads its answer: the raw bytes and their JSON; throws TlogProofError. */
export async function jsonRequest (libp2p: Libp2p, peer: PeerId, protocol: string, limits: ExchangeLimits, request: unknown): Promise<{ bytes: Uint8Array, body: Record<string, unknown> }> {
  const signal = AbortSignal.timeout(limits.timeoutMs)
  let stream
  try {
    stream = await openStream(libp2p, peer, protocol, { signal })
  } catch (err) {
    if ((err as Error).name === 'NoValidAddressesError') throw new LogUnreachableError(`no address known for the log's node ${peer.toString()}`)
    throw new TlogProofError(signal.aborted ? `no stream to the log within ${limits.timeoutMs} ms` : `cannot reach the log: ${(err as Error).message}`, 'unreachable')
  }
  try {
    const lp = lpStream(stream, { maxDataLength: limits.maxResponseBytes })
    await lp.write(Buffer.from(JSON.stringify(request), 'utf8'), { signal })
    let bytes: Uint8Array
    let body: Record<string, unknown>
    try {
      bytes = (await lp.read({ signal })).subarray()
      body = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>
    } catch (err) {
      throw signal.aborted
        ? new TlogProofError(`the log did not answer within ${limits.timeoutMs} ms`, 'unreachable')
        : new TlogProofError(`unreadable answer: ${(err as Error).message}`)
    }
    await stream.close({ signal }).catch(() => {})
    if (typeof body?.error === 'string') throw new TlogProofError(`the log refused: ${body.error.slice(0, 200)}`)
    return { bytes, body }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

export function createProofHandler (components: { source: ProofSource, log: Logger }): StreamHandler {
  const { source, log } = components
  return jsonHandler(TLOG_PROOF_LIMITS, async ({ origin, oldSize, newSize }) => {
    if (typeof origin !== 'string' || !isSize(oldSize) || !isSize(newSize)) return { error: 'a request is {"origin", "oldSize", "newSize"}' }
    const r = await source(origin, oldSize, newSize)
    return typeof r === 'string' ? { error: r.slice(0, 200) } : { proof: r.map(h => Buffer.from(h).toString('base64')) }
  }, log)
}

/** Asks `peer` (the log's node) for a consistency proof; throws TlogProofError on any failure. */
export async function requestConsistency (libp2p: Libp2p, peer: PeerId, origin: string, oldSize: number, newSize: number): Promise<Uint8Array[]> {
  const { body } = await jsonRequest(libp2p, peer, TLOG_PROOF_PROTOCOL, TLOG_PROOF_LIMITS, { origin, oldSize, newSize })
  const proof = body?.proof
  if (!Array.isArray(proof) || proof.length > 64) throw new TlogProofError('the answer holds no proof of at most 64 hashes')
  return proof.map((p: unknown) => {
    const h = typeof p === 'string' ? Buffer.from(p, 'base64') : Buffer.alloc(0)
    if (h.byteLength !== HASH_SIZE) throw new TlogProofError('a proof hash is not base64 of 32 bytes')
    return h
  })
}

export function createCheckpointHandler (components: { source: CheckpointSource, log: Logger }): StreamHandler {
  const { source, log } = components
  return jsonHandler(TLOG_CHECKPOINT_LIMITS, async ({ origin }) => {
    if (typeof origin !== 'string') return { error: 'a request is {"origin"}' }
    const r = await source(origin)
    return typeof r === 'string' ? { error: r.slice(0, 200) } : r
  }, log)
}

/** Asks `peer` for the newest checkpoint message it holds for `origin`; returns the answer's bytes, unchecked. */
export async function requestCheckpoint (libp2p: Libp2p, peer: PeerId, origin: string): Promise<Uint8Array> {
  return (await jsonRequest(libp2p, peer, TLOG_CHECKPOINT_PROTOCOL, TLOG_CHECKPOINT_LIMITS, { origin })).bytes
}
