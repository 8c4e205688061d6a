/**
 * The consistency-proof exchange a witness runs against a log (C2SP tlog-witness semantics
 * over libp2p instead of HTTP): one length-prefixed JSON request
 * `{"origin","oldSize","newSize"}`, one JSON answer `{"proof":[base64…]}` (full form: the old
 * tree's node first even when its size is a power of two) or `{"error":"…"}`. Both sides are
 * bounded in size and time; the requester verifies the proof itself.
 */
import { lpStream } from '@libp2p/utils'
import type { Libp2p, PeerId, StreamHandler } from '@libp2p/interface'
import { HASH_SIZE } from '../../protocol/tlog/hash.js'
import type { Logger } from '../logger.js'
import { LogUnreachableError, TlogProofError } from './errors.js'
import { openStream } from './nat.js'

export const TLOG_PROOF_PROTOCOL = '/neko-rebuilder/tlog-proof/1.0.0'

export const TLOG_PROOF_LIMITS = {
  /** Origin plus two integers in JSON. */
  maxRequestBytes: 512,
  /** 64 base64 hashes with JSON punctuation, or a short error. */
  maxResponseBytes: 64 * 48 + 256,
  /** Whole exchange, dial to answer. */
  timeoutMs: 5_000,
  /** Requests served at once, across all peers. */
  maxConcurrentStreams: 4
} as const

/** What the log answers: a proof, or why not. */
export type ProofSource = (origin: string, oldSize: number, newSize: number) => Promise<Uint8Array[] | string> | Uint8Array[] | string

const isSize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

export function createProofHandler (source: ProofSource, log: Logger): StreamHandler {
  let active = 0
  return async (stream) => {
    const signal = AbortSignal.timeout(TLOG_PROOF_LIMITS.timeoutMs)
    const lp = lpStream(stream, { maxDataLength: TLOG_PROOF_LIMITS.maxRequestBytes })
    const answer = async (value: unknown): Promise<void> => {
      await lp.write(Buffer.from(JSON.stringify(value), 'utf8'), { signal })
      await stream.close({ signal })
    }
    try {
      if (active >= TLOG_PROOF_LIMITS.maxConcurrentStreams) return await answer({ error: 'busy' })
      active++
      try {
        const req = JSON.parse(Buffer.from((await lp.read({ signal })).subarray()).toString('utf8')) as Record<string, unknown>
        const { origin, oldSize, newSize } = req ?? {}
        if (typeof origin !== 'string' || !isSize(oldSize) || !isSize(newSize)) return await answer({ error: 'a request is {"origin", "oldSize", "newSize"}' })
        const r = await source(origin, oldSize, newSize)
        await answer(typeof r === 'string' ? { error: r.slice(0, 200) } : { proof: r.map(h => Buffer.from(h).toString('base64')) })
      } finally {
        active--
      }
    } catch (err) {
      log.debug({ err }, 'a tlog proof stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** Asks `peer` (the log's node) for a consistency proof; throws TlogProofError on any failure. */
export async function requestConsistency (libp2p: Libp2p, peer: PeerId, origin: string, oldSize: number, newSize: number): Promise<Uint8Array[]> {
  const signal = AbortSignal.timeout(TLOG_PROOF_LIMITS.timeoutMs)
  let stream
  try {
    stream = await openStream(libp2p, peer, TLOG_PROOF_PROTOCOL, { signal })
  } catch (err) {
    if ((err as Error).name === 'NoValidAddressesError') throw new LogUnreachableError(`no address known for the log's node ${peer.toString()}`)
    throw new TlogProofError(signal.aborted ? `no stream to the log within ${TLOG_PROOF_LIMITS.timeoutMs} ms` : `cannot reach the log: ${(err as Error).message}`)
  }
  try {
    const lp = lpStream(stream, { maxDataLength: TLOG_PROOF_LIMITS.maxResponseBytes })
    await lp.write(Buffer.from(JSON.stringify({ origin, oldSize, newSize }), 'utf8'), { signal })
    let body: Record<string, unknown>
    try {
      body = JSON.parse(Buffer.from((await lp.read({ signal })).subarray()).toString('utf8')) as Record<string, unknown>
    } catch (err) {
      throw new TlogProofError(signal.aborted ? `the log did not answer within ${TLOG_PROOF_LIMITS.timeoutMs} ms` : `unreadable answer: ${(err as Error).message}`)
    }
    await stream.close({ signal }).catch(() => {})
    if (typeof body?.error === 'string') throw new TlogProofError(`the log refused: ${body.error.slice(0, 200)}`)
    const proof = body?.proof
    if (!Array.isArray(proof) || proof.length > 64) throw new TlogProofError('the answer holds no proof of at most 64 hashes')
    return proof.map((p: unknown) => {
      const h = typeof p === 'string' ? Buffer.from(p, 'base64') : Buffer.alloc(0)
      if (h.byteLength !== HASH_SIZE) throw new TlogProofError('a proof hash is not base64 of 32 bytes')
      return h
    })
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
