import { createHash } from 'node:crypto'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipsubOpts, Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerScoreParams, PeerScoreThresholds, TopicScoreParams } from '@libp2p/gossipsub/score'
import type { Logger } from '../logger.js'
import type { Colocation } from './colocation.js'
import type { Penalties } from './penalty.js'
import type { Throttle } from './throttle.js'
import { DEFAULT_HEARTBEAT_MS, DEFAULT_MAX_RPC_BYTES, TOPICS } from './constants.js'

export type ValidationOutcome = 'accept' | 'reject' | 'ignore'

/**
 * Application check of one gossip message; `from` is the PeerId of the peer that delivered it
 * (messages carry no author: who signed a message is in its envelope). It may return, with
 * its outcome, what it made of the message: the node hands that value to its delivery
 * callback with the message, so nothing is checked twice.
 */
export type ValidateFn = (topic: string, data: Uint8Array, from: string) => Promise<ValidationOutcome | Validated> | ValidationOutcome | Validated

/** An outcome and the value the check made of the message. */
export interface Validated { outcome: ValidationOutcome, value: unknown }

export interface GossipInit {
  /** Heartbeat in ms; shorter means faster mesh repair and lazy gossip (tests use ~100). */
  heartbeatIntervalMs?: number
  /** Largest message data accepted or published. */
  maxMessageBytes?: number
  /** Largest gossipsub RPC frame read from a peer. */
  maxRpcBytes?: number
  /**
   * Messages per second one peer may have validated (the peer that delivered them, whoever
   * wrote them), and the burst it may send at once. Beyond it a message is ignored before the
   * application validator sees it.
   */
  peerRate?: { perSecond: number, burst: number }
  /** The same across all peers together. */
  globalRate?: { perSecond: number, burst: number }
  /** The same two for the checkpoint topic, which has buckets of its own. */
  checkpointPeerRate?: { perSecond: number, burst: number }
  checkpointGlobalRate?: { perSecond: number, burst: number }
  /** How long a message id is remembered as seen (gossipsub's default, 2 minutes, when absent). */
  seenTtlMs?: number
  /** Mesh degree; the defaults suit a network of tens to hundreds of rebuilders. */
  D?: number
  Dlo?: number
  Dhi?: number
}

// gossipsub hands msgIdFn the very data object it gave fastMsgIdFn (after the signature
// check): both ids come from one hash per message.
const digests = new WeakMap<Uint8Array, Buffer>()

function sha256Of (data: Uint8Array): Buffer {
  let digest = digests.get(data)
  if (digest === undefined) {
    digest = createHash('sha256').update(data).digest()
    digests.set(data, digest)
  }
  return digest
}

/**
 * The data of messages that arrived with a libp2p `from` field. gossipsub's StrictNoSign
 * check refuses a signature, sequence number or key but not `from`, and would relay the
 * field unchanged: the fast id (the first thing gossipsub computes, on the raw RPC message)
 * marks such data so the validator wrapper rejects it before anything else.
 */
const authored = new WeakSet<Uint8Array>()

/** A marked message's id differs from the bare data's, so an honest copy is never taken for its duplicate. */
const AUTHORED_ID_PREFIX = Buffer.from('from:')

/**
 * Message id = sha256 of the data: a claim published by its builder and relayed by many
 * peers, or re-published by another node, is one message and is delivered once.
 */
export function messageId (msg: Message): Uint8Array {
  if (authored.has(msg.data)) return createHash('sha256').update(AUTHORED_ID_PREFIX).update(msg.data).digest()
  return sha256Of(msg.data)
}

/** Same hash on the raw RPC message, so duplicates are dropped before their signature is checked. */
export function fastMessageId (msg: { data?: Uint8Array, from?: Uint8Array }): string {
  const data = msg.data ?? EMPTY
  if (msg.from != null) {
    authored.add(data)
    return 'from:' + createHash('sha256').update(AUTHORED_ID_PREFIX).update(data).digest('base64')
  }
  return sha256Of(data).toString('base64')
}

/** Whether gossipsub handed the validator a message that arrived with a libp2p `from` field. */
export function carriesAuthor (msg: { data: Uint8Array }): boolean {
  return authored.has(msg.data)
}

const EMPTY = new Uint8Array(0)

function messageIdToString (id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('base64')
}

/**
 * Scoring per topic: what counts is P4, invalid deliveries. One rejected message puts
 * its sender below the gossip threshold, two below the publish threshold, three on the
 * graylist (its RPCs are ignored) until the counter decays. A peer with a negative score
 * is also pruned from the mesh at the next heartbeat. Mesh-delivery deficits (P3)
 * are off: claims are rare, so a quiet honest peer must not look like a withholding one.
 */
export function topicScoreParams (): TopicScoreParams {
  return {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 3600,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -20,
    // Per decay interval (1 s): one invalid message keeps its sender below the gossip
    // threshold for about 11 s and is forgotten after about 75 s; a steady stream of them
    // keeps the sender graylisted.
    invalidMessageDeliveriesDecay: 0.97
  }
}

/**
 * gossipsub tells mesh peers IDONTWANT for each message of at least this size as soon as it
 * arrives, before validation: one RPC frame per mesh peer per message, which a flood multiplies.
 * A claim is a few KiB, where the duplicate it saves costs about as much as the frame; only
 * large messages are worth it.
 */
export const IDONTWANT_MIN_BYTES = 16 * 1024

/** Rebuilders behind one NAT or in one data centre share an address; only crowds are penalised. */
export const COLOCATION = { threshold: 32, weight: -5 } as const

/**
 * How long the score of a departed peer is kept (gossipsub keeps only scores of zero or
 * less). Long enough that reconnecting does not wipe an invalid-message penalty before it
 * would have decayed anyway (one invalid message is forgotten after about 75 s, a graylisting
 * burst after two to three minutes); short enough that churning identities leave few records.
 */
export const RETAIN_SCORE_MS = 5 * 60_000

/** What the node adds to gossipsub's score of a peer, as its application-specific score (P5). */
export interface AppScore {
  /** Replaces gossipsub's P6, which counts departed peers too (see colocation.ts). */
  colocation: Colocation
  /** Invalid items sent outside gossip (back-fill), weighed as P4 weighs invalid messages. */
  penalties: Penalties
}

export function scoreParams (app?: AppScore): Partial<PeerScoreParams> {
  const topics: Record<string, TopicScoreParams> = {}
  for (const topic of Object.values(TOPICS)) topics[topic] = topicScoreParams()
  return {
    topics,
    // Keeps positive topic scores from outweighing an invalid-message penalty.
    topicScoreCap: 10,
    IPColocationFactorWeight: 0,
    appSpecificScore: app != null ? (peer) => app.colocation.score(peer) + app.penalties.score(peer) : () => 0,
    appSpecificWeight: 1,
    retainScore: RETAIN_SCORE_MS
  }
}

export const scoreThresholds: PeerScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 5
}

export function gossipOptions (init: GossipInit, app?: AppScore): Partial<GossipsubOpts> {
  return {
    // A message is one DSSE envelope signed by its own key, which the validator verifies: a
    // libp2p signature on top adds no authenticity, and checking it is the costliest step
    // before the admission rate. Messages carry no author, sequence number or key.
    globalSignaturePolicy: 'StrictNoSign',
    idontwantMinDataSize: IDONTWANT_MIN_BYTES,
    allowPublishToZeroTopicPeers: true,
    // Our own node re-publishing a known claim is not an error.
    ignoreDuplicatePublishError: true,
    emitSelf: false,
    // Every topic this project speaks; subscriptions to others are ignored.
    allowedTopics: Object.values(TOPICS),
    msgIdFn: messageId,
    fastMsgIdFn: fastMessageId,
    msgIdToStrFn: messageIdToString,
    heartbeatInterval: init.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS,
    ...(init.seenTtlMs != null ? { seenTTL: init.seenTtlMs } : {}),
    maxInboundDataLength: init.maxRpcBytes ?? DEFAULT_MAX_RPC_BYTES,
    scoreParams: scoreParams(app),
    scoreThresholds,
    ...(init.D != null ? { D: init.D } : {}),
    ...(init.Dlo != null ? { Dlo: init.Dlo } : {}),
    ...(init.Dhi != null ? { Dhi: init.Dhi } : {})
  }
}

const OUTCOME: Record<ValidationOutcome, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  reject: TopicValidatorResult.Reject,
  ignore: TopicValidatorResult.Ignore
}

/**
 * Wraps a topic's check for gossipsub. It never throws: gossipsub turns a thrown error into
 * Ignore, which would let a peer that crashes our validator go unpenalised. `onAccepted`
 * receives what the check made of each accepted message (gossipsub delivers that very
 * message object next).
 */
export function topicValidator<C extends { outcome: ValidationOutcome }> (topic: string, check: (data: Uint8Array, from: string) => Promise<C> | C, maxMessageBytes: number, log: Logger, throttle?: Throttle, onAccepted?: (msg: Message, checked: C) => void, onThrottled?: (from: string) => void): TopicValidatorFn {
  return async (propagationSource, msg) => {
    const from = propagationSource.toString()
    // Messages carry no author (StrictNoSign): one that names one is malformed, whoever relays it.
    if (carriesAuthor(msg)) {
      log.debug({ topic, from }, 'gossip message with a libp2p from field rejected')
      return TopicValidatorResult.Reject
    }
    if (msg.data.byteLength > maxMessageBytes) {
      log.debug({ topic, from, bytes: msg.data.byteLength, limit: maxMessageBytes }, 'oversized gossip message rejected')
      return TopicValidatorResult.Reject
    }
    // Before any verification or store work: a flood costs its sender's budget, not the node.
    if (throttle != null && !throttle.take(from)) {
      onThrottled?.(from)
      return TopicValidatorResult.Ignore
    }
    try {
      const checked = await check(msg.data, from)
      const result = OUTCOME[checked.outcome]
      if (result == null) {
        log.warn({ topic, outcome: checked.outcome }, 'validator returned an unknown outcome; rejecting')
        return TopicValidatorResult.Reject
      }
      if (result === TopicValidatorResult.Accept) onAccepted?.(msg, checked)
      return result
    } catch (err) {
      log.warn({ topic, from, err }, 'validator threw; rejecting message')
      return TopicValidatorResult.Reject
    }
  }
}
