import type { TypedEventTarget } from '@libp2p/interface'
import type { Envelope } from '../../protocol/dsse.js'
import type { DecodedMessage } from '../../protocol/messages.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { ComponentLogger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { StoredMessage, Store } from '../store/types.js'

export type Verdict = 'accept' | 'reject' | 'ignore'

/** What the ingest made of one envelope: the verdict, and the verified message when it verified. */
export interface Judgement {
  verdict: Verdict
  message?: DecodedMessage
  reason?: string
  /** Ignored over the trusted keys' gossip rate: the sender holds it, and back-fill can fetch it. */
  throttled?: boolean
  /**
   * A valid announcement by a key this node's policy does not list as an announcer: ignored,
   * not rejected, since a peer whose policy lists that key relays it honestly.
   */
  refused?: boolean
}

/** What became of one envelope handed to the ingest. */
export type Outcome = 'stored' | 'duplicate' | 'rejected'

/** An outcome, and whether the message is a trusted key's (an announcer's announcement, a policy builder's claim). */
export interface ItemOutcome { outcome: Outcome, trusted: boolean }

export interface IngestEvents {
  /** A message was written to the store: exactly what was stored, cursor included. */
  stored: CustomEvent<StoredMessage>
}

export interface IngestComponents {
  store: Store
  policy: TrustPolicy
  logger?: ComponentLogger
  metrics?: Pick<Metrics, 'claimStored'>
}

export interface IngestInit {
  /** Claims per minute accepted from one key that the policy does not trust. */
  untrustedPerMinute?: number
  /** Untrusted claims kept for one target; beyond it more are ignored. */
  untrustedPerTarget?: number
  /**
   * Gossip messages per minute accepted from one trusted key (a policy builder's claims, an
   * announcer's announcements), and the burst; beyond it they are ignored (back-fill brings
   * them later). Untrusted keys have their own, lower limit.
   */
  trustedRate?: { perMinute: number, burst: number }
}

/**
 * The one way a signed message enters the node: bytes from gossip, a back-fill page, the
 * node's own claims and announcements, are verified (`decodeMessage`), judged against the
 * policy and the node's limits, stored, and announced as a `stored` event. Nothing else
 * writes messages to the store.
 */
export interface Ingest extends TypedEventTarget<IngestEvents> {
  /**
   * Gossip validation of one message on `topic`, before gossipsub relays it: every check,
   * the trusted keys' rate included; stores nothing. Never throws. An accepted message holds
   * its slot under the untrusted caps until `deliver` stores it.
   */
  validate: (topic: string, data: Uint8Array) => Promise<Judgement>
  /** Stores a gossip message that `validate` accepted (gossipsub delivers it once). */
  deliver: (judgement: Judgement, data: Uint8Array) => Promise<Outcome>
  /**
   * A back-fill page: every signature checked as a batch, then item by item in order,
   * judged and stored, so a later item is judged with the earlier ones counted.
   */
  acceptPage: (items: readonly Uint8Array[]) => Promise<Outcome[]>
  /** `acceptPage`, saying also of each item whether a trusted key signed it (back-fill paces a server by what it contributes). */
  acceptItems: (items: readonly Uint8Array[]) => Promise<ItemOutcome[]>
  /** One envelope the node was handed to publish (`announce`): judged as gossip on `topic` is, without the trusted keys' rate. */
  accept: (topic: string, data: Uint8Array) => Promise<{ outcome: Outcome, judgement: Judgement }>
  /**
   * Envelopes this process signed, or vouches for: verified and stored, not judged against
   * the policy (the node keeps its own claims whoever the policy trusts). Throws what the
   * verification throws; nothing is stored then.
   */
  record: (envelope: Envelope | string) => Promise<{ id: string, stored: boolean }>
  /** `record` of many envelopes (fixtures, benchmarks): signatures checked as batches; throws before storing any of a batch that fails. */
  recordMany: (envelopes: ReadonlyArray<Envelope | string>) => Promise<Array<{ id: string, stored: boolean }>>
}
