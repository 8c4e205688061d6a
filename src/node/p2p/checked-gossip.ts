import type { TrustPolicy } from '../../protocol/policy.js'
import type { Logger } from '../logger.js'
import { createRateLimiter } from '../rate-limit.js'
import type { TopicHandler } from './topics.js'

/**
 * What the check of one signed statement received over gossip (a divergence report, a smoke
 * test result) made of it: accepted with its signer and what it says, or refused (`reject`:
 * the sender's fault; `ignore`: not ours to keep) with the reason.
 */
export type GossipCheck<V> = { verdict: 'accept', keyId: string, value: V } | GossipRefusal
export interface GossipRefusal { verdict: 'reject' | 'ignore', reason: string, keyId?: string }

export interface CheckedGossip<V, S> {
  /** Gossip check of one envelope. Never throws. */
  check: (data: Uint8Array) => Promise<GossipCheck<V>>
  /** Stores what a check accepted, with what `check` found when the p2p layer hands that over (else it checks again). */
  receive: (data: Uint8Array, checked?: GossipCheck<V>) => Promise<S | undefined>
}

export interface CheckedGossipComponents {
  /** The trust policy of the moment: its builders are the only signers kept. */
  policy: () => TrustPolicy
  log: Logger
}

/** The bounds a node may set on one topic of signed statements. */
export interface CheckedGossipLimits {
  /** Largest envelope accepted. */
  maxBytes?: number
  /** Statements per minute accepted from one signer, whoever relays them; a quarter of it at once. */
  perSignerPerMinute?: number
}

export interface CheckedGossipInit<V, S> {
  /** What the topic carries, for reasons and logs, one and many: ['divergence report', 'divergence reports']. */
  what: [string, string]
  maxBytes: number
  perSignerPerMinute: number
  /** Verifies an envelope against the policy's builder keys (or its embedded key); throws on a bad one. */
  verify: (envelopeJson: string, policy: TrustPolicy) => { keyId: string, value: V }
  /**
   * What this topic checks of a verified statement of a policy builder, against this node's
   * store: a refusal, or undefined to accept. A throw is a store problem, not the sender's.
   */
  refuse: (keyId: string, value: V, data: Uint8Array) => Promise<GossipRefusal | undefined>
  /** Keeps an accepted statement. */
  store: (data: Uint8Array, keyId: string, value: V) => Promise<S>
}

/**
 * The check-and-receive pair every topic of signed statements has. The check runs in one
 * order: size, signature, signer in the policy, the topic's own checks against the store,
 * then the signer's rate (counted only for what is new here, so a relayed copy of a stored
 * statement costs its signer nothing). A stranger's statement is not wrong, only not ours to
 * keep: ignored, not relayed, not penalised. A check that fails unexpectedly rejects the
 * message instead of throwing into gossipsub; only what a check accepted is stored.
 */
export function checkedGossip<V, S> (components: CheckedGossipComponents, init: CheckedGossipInit<V, S>): CheckedGossip<V, S> {
  const { log } = components
  const [one, many] = init.what
  const perMinute = init.perSignerPerMinute
  const limiter = createRateLimiter({ perMinute, burst: Math.max(1, Math.ceil(perMinute / 4)), maxKeys: 4096 })

  async function check (data: Uint8Array): Promise<GossipCheck<V>> {
    if (data.byteLength > init.maxBytes) return { verdict: 'reject', reason: `${one} of ${data.byteLength} bytes exceeds ${init.maxBytes}` }
    const policy = components.policy()
    let verified: { keyId: string, value: V }
    try {
      verified = init.verify(Buffer.from(data).toString('utf8'), policy)
    } catch (err) {
      return { verdict: 'reject', reason: `${(err as Error).name}: ${(err as Error).message}` }
    }
    const { keyId, value } = verified
    if (!policy.builderKeys.has(keyId)) return { verdict: 'ignore', keyId, reason: `${one} signed by ${keyId}, not a builder of the policy` }
    try {
      const refused = await init.refuse(keyId, value, data)
      if (refused != null) return refused
    } catch (err) {
      log.warn({ err }, `could not read the store to check a ${one}`)
      return { verdict: 'ignore', reason: 'store unavailable' }
    }
    if (!limiter.take(keyId)) return { verdict: 'ignore', keyId, reason: `signer ${keyId} over its rate of ${perMinute} ${many} a minute` }
    return { verdict: 'accept', keyId, value }
  }

  return {
    async check (data) {
      try {
        return await check(data)
      } catch (err) {
        log.warn({ err }, `checking a ${one} failed unexpectedly; rejecting`)
        return { verdict: 'reject', reason: 'validator error' }
      }
    },
    async receive (data, checked) {
      const r = checked ?? await check(data)
      if (r.verdict !== 'accept') return undefined
      return await init.store(data, r.keyId, r.value)
    }
  }
}

/** The topic handler of a checked gossip: what its check accepts is delivered to its store (observers keep it as builders do). */
export function checkedTopic<V, S> (components: { gossip: CheckedGossip<V, S>, log: Logger }, what: string): TopicHandler<GossipCheck<V>> {
  const { gossip, log } = components
  return {
    async validate (data) {
      const checked = await gossip.check(data)
      if (checked.verdict === 'reject') log.info({ reason: checked.reason, keyId: checked.keyId }, `${what} refused`)
      return checked.verdict === 'accept' ? { outcome: 'accept', value: checked } : { outcome: checked.verdict }
    },
    async deliver (checked, data) {
      await gossip.receive(data, checked).catch((err: unknown) => { log.warn({ err }, `storing a ${what} failed`) })
    }
  }
}
