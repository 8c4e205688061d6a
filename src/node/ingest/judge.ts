import { targetKey, type DecodedMessage } from '../../protocol/messages.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { TOPICS } from '../p2p/constants.js'
import { createRateLimiter } from '../rate-limit.js'
import type { Logger } from '../logger.js'
import type { Store } from '../store/types.js'
import { createReservations } from './reservations.js'
import type { IngestInit, Judgement } from './types.js'

/** A builder signs one claim per target it builds, an announcer one announcement per release. */
const DEFAULT_TRUSTED_RATE = { perMinute: 120, burst: 60 }

/** Where a message came from: gossip is also held to the trusted keys' rate. */
export type Arrival = 'gossip' | 'backfill' | 'local'

/**
 * Everything after the signature: the right topic for its kind, not stored yet,
 * announcements only from policy announcers, untrusted claims rate-limited and capped per
 * target (slots reserved until stored), trusted keys rate-limited on gossip.
 */
export function createJudge (components: { store: Store, policy: TrustPolicy, log: Logger }, init: IngestInit = {}): (arrival: Arrival, topic: string | undefined, message: DecodedMessage) => Promise<Judgement> {
  const { store, policy, log } = components
  const limiter = createRateLimiter({ perMinute: init.untrustedPerMinute ?? 60, burst: Math.max(1, Math.ceil((init.untrustedPerMinute ?? 60) / 4)) })
  // Trusted keys are rate-limited too: a leaked or broken one must not flood the node.
  const trustedLimiter = createRateLimiter({ ...(init.trustedRate ?? DEFAULT_TRUSTED_RATE), maxKeys: 4096 })
  const perTarget = init.untrustedPerTarget ?? 16
  // Untrusted claims accepted but maybe not stored yet, per target: they count against the cap too.
  const pending = createReservations({ ttlMs: 60_000 })

  return async (arrival, topic, message) => {
    const expected = message.kind === 'announcement' ? TOPICS.announcements : TOPICS.claims
    if (topic != null && topic !== expected) return { verdict: 'reject', reason: `${message.kind} on topic ${topic}` }
    let trusted: boolean
    try {
      if (await store.hasMessage(message.id)) return { verdict: 'ignore', message, reason: 'already stored' }
      if (message.kind === 'announcement') {
        trusted = policy.announcerKeys.has(message.keyId)
        // `message` rides along so the node can say which release it refused. Ignored, not
        // rejected: nodes of other policies share the network, and a peer relaying what its
        // own policy trusts is not penalised for it (nor is a back-fill server).
        if (!trusted) return { verdict: 'ignore', refused: true, message, reason: `announcement signed by ${message.keyId}, not an announcer of the policy` }
      } else if (!(trusted = policy.builderKeys.has(message.keyId))) {
        // A stranger's claim is shown, never counted; keep it from crowding anything out.
        if (!limiter.take(message.keyId)) return { verdict: 'ignore', reason: `untrusted key ${message.keyId} over its rate` }
        const target = targetKey(message.claim.target)
        const existing = await store.claimsForTarget(target)
        // From here to the reservation nothing awaits: concurrent checks see each other's slots.
        const untrusted = new Set(existing.filter(m => !policy.builderKeys.has(m.keyId)).map(m => m.id))
        for (const id of pending.ids(target)) untrusted.add(id)
        if (untrusted.size >= perTarget) return { verdict: 'ignore', reason: `target already has ${untrusted.size} untrusted claims` }
        pending.take(target, message.id)
      }
    } catch (err) {
      // A store problem is ours, not the sender's fault.
      log.warn({ err }, 'the ingest could not read the store')
      return { verdict: 'ignore', reason: 'store unavailable' }
    }
    if (arrival === 'gossip' && trusted && !trustedLimiter.take(message.keyId)) return { verdict: 'ignore', reason: `trusted key ${message.keyId} over its rate`, throttled: true }
    return { verdict: 'accept', message }
  }
}
