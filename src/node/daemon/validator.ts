import { LIMITS } from '../../protocol/limits.js'
import { decodeMessage, decodeMessages, MAX_DECODE_BATCH, targetKey, type DecodedMessage } from '../../protocol/messages.js'
import { policyKeys, type TrustPolicy } from '../../protocol/policy.js'
import { TOPICS } from '../p2p/index.js'
import type { Logger } from '../logger.js'
import type { Store } from '../store/types.js'
import { createRateLimiter } from '../rate-limit.js'
import { createReservations } from './reservations.js'

export type Verdict = 'accept' | 'reject' | 'ignore'

export interface ValidatorInit {
  /** Claims per minute accepted from one key that the policy does not trust. */
  untrustedPerMinute?: number
  /** Untrusted claims kept for one target; beyond it more are ignored. */
  untrustedPerTarget?: number
}

export interface CheckResult { verdict: Verdict, decoded?: DecodedMessage, reason?: string }

export interface MessageValidator {
  /** Gossip and back-fill check of one envelope. Never throws. */
  check: (topic: string | undefined, data: Uint8Array) => Promise<CheckResult>
  /**
   * `check` of many envelopes (a back-fill page), every signature first; then, item by item
   * in order, the rest of the check and `then` (which stores an accepted message before the
   * next one is judged, so per-target limits count it). Throws only what `then` throws.
   */
  checkMany: <T>(topic: string | undefined, items: readonly Uint8Array[], then: (result: CheckResult, data: Uint8Array) => Promise<T>) => Promise<T[]>
  /** The decoded message of the data object that `check` accepted (saves a second verification). */
  take: (data: Uint8Array) => DecodedMessage | undefined
  policy: () => TrustPolicy
}

/**
 * The one check every message passes, over gossip or back-fill: bounded size, a signature
 * that verifies (policy keys, or the embedded key of a stranger), the right topic for its
 * kind, announcements only from policy announcers, untrusted claims rate-limited and capped.
 */
export function createMessageValidator (components: { store: Store, policy: TrustPolicy, log: Logger }, init: ValidatorInit = {}): MessageValidator {
  const { store, log } = components
  const policy = components.policy
  const keys = policyKeys(policy)
  const limiter = createRateLimiter({ perMinute: init.untrustedPerMinute ?? 60, burst: Math.max(1, Math.ceil((init.untrustedPerMinute ?? 60) / 4)) })
  const perTarget = init.untrustedPerTarget ?? 16
  // Untrusted claims accepted but maybe not stored yet, per target: they count against the cap too.
  const pending = createReservations({ ttlMs: 60_000 })
  // Keyed by the data object itself: gossipsub delivers the object it validated, so the
  // hand-over costs no hash, and an entry lives no longer than gossipsub keeps the data.
  const recent = new WeakMap<Uint8Array, DecodedMessage>()

  function tooLarge (data: Uint8Array): CheckResult | undefined {
    if (data.byteLength > LIMITS.envelopeBytes) return { verdict: 'reject', reason: `envelope of ${data.byteLength} bytes exceeds ${LIMITS.envelopeBytes}` }
    return undefined
  }

  const rejected = (err: unknown): CheckResult => ({ verdict: 'reject', reason: `${(err as Error).name}: ${(err as Error).message}` })
  // A bug or an unexpected throw past the decode step: never let it through, never throw.
  const failed = (err: unknown): CheckResult => {
    log.warn({ err }, 'validator failed unexpectedly; rejecting')
    return { verdict: 'reject', reason: 'validator error' }
  }

  /** Everything after the signature: topic, duplicates, announcers, untrusted limits. */
  async function judge (topic: string | undefined, data: Uint8Array, decoded: DecodedMessage): Promise<CheckResult> {
    const expected = decoded.kind === 'announcement' ? TOPICS.announcements : TOPICS.claims
    if (topic != null && topic !== expected) return { verdict: 'reject', reason: `${decoded.kind} on topic ${topic}` }
    try {
      if (await store.hasMessage(decoded.id)) return { verdict: 'ignore', decoded, reason: 'already stored' }
      if (decoded.kind === 'announcement') {
        // `decoded` rides along so the node can say which release it refused.
        if (!policy.announcerKeys.has(decoded.keyId)) return { verdict: 'reject', decoded, reason: `announcement signed by ${decoded.keyId}, not an announcer of the policy` }
      } else if (!policy.builderKeys.has(decoded.keyId)) {
        // A stranger's claim is shown, never counted; keep it from crowding anything out.
        if (!limiter.take(decoded.keyId)) return { verdict: 'ignore', reason: `untrusted key ${decoded.keyId} over its rate` }
        const target = targetKey(decoded.claim.target)
        const existing = await store.claimsForTarget(target)
        // From here to the reservation nothing awaits: concurrent checks see each other's slots.
        const untrusted = new Set(existing.filter(m => !policy.builderKeys.has(m.keyId)).map(m => m.id))
        for (const id of pending.ids(target)) untrusted.add(id)
        if (untrusted.size >= perTarget) return { verdict: 'ignore', reason: `target already has ${untrusted.size} untrusted claims` }
        pending.take(target, decoded.id)
      }
    } catch (err) {
      // A store problem is ours, not the sender's fault.
      log.warn({ err }, 'validator could not read the store')
      return { verdict: 'ignore', reason: 'store unavailable' }
    }
    recent.set(data, decoded)
    return { verdict: 'accept', decoded }
  }

  async function check (topic: string | undefined, data: Uint8Array): Promise<CheckResult> {
    const big = tooLarge(data)
    if (big != null) return big
    let decoded: DecodedMessage
    try {
      decoded = decodeMessage(data, { keys, allowEmbeddedKeys: true })
    } catch (err) {
      return rejected(err)
    }
    return await judge(topic, data, decoded)
  }

  async function checkMany<T> (topic: string | undefined, items: readonly Uint8Array[], then: (result: CheckResult, data: Uint8Array) => Promise<T>): Promise<T[]> {
    const out: T[] = []
    for (let start = 0; start < items.length; start += MAX_DECODE_BATCH) {
      const batch = items.slice(start, start + MAX_DECODE_BATCH)
      const sizes = batch.map(tooLarge)
      // An oversized item is not even parsed: an empty stand-in keeps the results in step.
      const decoded = decodeMessages(batch.map((d, i) => sizes[i] == null ? d : ''), { keys, allowEmbeddedKeys: true })
      for (let i = 0; i < batch.length; i++) {
        const data = batch[i] as Uint8Array
        const r = decoded[i] as (typeof decoded)[number]
        let result: CheckResult
        try {
          result = sizes[i] ?? (r.ok ? await judge(topic, data, r.message) : rejected(r.error))
        } catch (err) {
          result = failed(err)
        }
        out.push(await then(result, data))
      }
    }
    return out
  }

  return {
    async check (topic, data) {
      try {
        return await check(topic, data)
      } catch (err) {
        return failed(err)
      }
    },
    checkMany,
    take (data) {
      const d = recent.get(data)
      recent.delete(data)
      return d
    },
    policy: () => policy
  }
}
