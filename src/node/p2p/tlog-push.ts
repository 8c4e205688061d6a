import type { Libp2p, PeerId } from '@libp2p/interface'
import { CHECKPOINT_MESSAGE_BYTES } from '../../protocol/tlog/gossip.js'
import type { Logger } from '../logger.js'
import { jsonHandler, jsonRequest, type ExchangeLimits } from './tlog-proof.js'
import type { StreamHandler } from '@libp2p/interface'

/**
 * `/neko-rebuilder/tlog-witness/1.0.0`: a log's node hands its new checkpoint straight to each
 * of its sampled witnesses, which answers with its cosignature (C2SP tlog-witness's
 * add-checkpoint, over libp2p). Nothing of it is gossiped, so a release that grows every node's
 * log costs each node the few checkpoints it witnesses, not one message per log in the network.
 *
 * Request: the checkpoint message as gossiped, `{"note","keys"}` (the log's signature alone).
 * Answer: the witness's cosigned checkpoint message, or `{"error"}` saying why not (it may need
 * a consistency proof first, which it asks the log's node for while the request waits).
 */
export const TLOG_WITNESS_PROTOCOL = '/neko-rebuilder/tlog-witness/1.0.0'

export const TLOG_WITNESS_LIMITS = {
  maxRequestBytes: CHECKPOINT_MESSAGE_BYTES,
  maxResponseBytes: CHECKPOINT_MESSAGE_BYTES,
  /** The witness may ask the log for a proof (5 s) before it answers. */
  timeoutMs: 12_000,
  maxConcurrentStreams: 8
} as const satisfies ExchangeLimits

/** What a witness answers for a checkpoint its log's node `from` pushed: the cosigned message, or why not. */
export type CheckpointPushTarget = (data: Uint8Array, from: string) => Promise<Uint8Array | string>

export function createWitnessHandler (components: { target: CheckpointPushTarget, log: Logger }): StreamHandler {
  const { target, log } = components
  return jsonHandler(TLOG_WITNESS_LIMITS, async (req, peer) => {
    if (typeof req.note !== 'string' || !Array.isArray(req.keys)) return { error: 'a request is a checkpoint message {"note", "keys"}' }
    const r = await target(Buffer.from(JSON.stringify({ note: req.note, keys: req.keys }), 'utf8'), peer)
    return typeof r === 'string' ? { error: r.slice(0, 200) } : r
  }, log)
}

/** Pushes a checkpoint message to a witness; returns its answer's bytes (unchecked); throws TlogProofError. */
export async function requestCosignature (libp2p: Libp2p, witness: PeerId, message: Uint8Array): Promise<Uint8Array> {
  return (await jsonRequest(libp2p, witness, TLOG_WITNESS_PROTOCOL, TLOG_WITNESS_LIMITS, JSON.parse(Buffer.from(message).toString('utf8')))).bytes
}
