import type { Message, TopicValidatorFn } from '@libp2p/gossipsub'
import type { Logger } from '../logger.js'
import { topicValidator, type ValidateFn, type ValidationOutcome } from './gossip.js'
import type { Throttle } from './throttle.js'

/** What a topic handler made of one message: with `accept`, the value its delivery receives. */
export type TopicCheck<T> = { outcome: 'accept', value: T } | { outcome: Exclude<ValidationOutcome, 'accept'> }

/**
 * Everything a node does with one gossip topic, registered with the p2p node per topic as
 * js-libp2p registers topic validators on gossipsub. `validate` gates propagation (it must
 * not be slow); `deliver` receives each accepted message once, with the value `validate`
 * made of it, so nothing is checked twice. Messages the node publishes itself are not delivered.
 */
export interface TopicHandler<T> {
  validate: (data: Uint8Array, from: string) => Promise<TopicCheck<T>> | TopicCheck<T>
  deliver: (value: T, data: Uint8Array, from: string) => void | Promise<void>
  /** Told of each message ignored over the admission rate, with the peer that delivered it (it holds what was dropped). */
  throttled?: (from: string) => void
}

/** Validation outcomes of every handler together. */
export interface OutcomeCounts { accepted: number, rejected: number, ignored: number }

/** One topic's validator and delivery, sharing a map from message to value typed by its handler. */
export interface TopicRoute {
  validator: TopicValidatorFn
  deliver: (msg: Message, from: string) => Promise<void>
}

export function topicRoute<T> (topic: string, handler: TopicHandler<T>, opts: { maxMessageBytes: number, log: Logger, throttle: Throttle, counts: OutcomeCounts }): TopicRoute {
  // What `validate` made of each message, until gossipsub delivers that message object.
  const accepted = new WeakMap<Message, { value: T }>()
  const validator = topicValidator(topic, async (data, from) => {
    const checked = await handler.validate(data, from)
    if (checked.outcome === 'accept') opts.counts.accepted++
    else if (checked.outcome === 'reject') opts.counts.rejected++
    else opts.counts.ignored++
    return checked
  }, opts.maxMessageBytes, opts.log, opts.throttle, (msg, checked) => {
    if (checked.outcome === 'accept') accepted.set(msg, { value: checked.value })
  }, handler.throttled != null ? (from) => { handler.throttled?.(from) } : undefined)
  return {
    validator,
    async deliver (msg, from) {
      const box = accepted.get(msg)
      accepted.delete(msg)
      // gossipsub delivers only what the validator accepted: a message without a value was not.
      if (box === undefined) {
        opts.log.warn({ topic }, 'a gossip message arrived without its validation; dropped')
        return
      }
      await handler.deliver(box.value, msg.data, from)
    }
  }
}

/**
 * A handler from the two untyped callbacks a p2p node may be given for topics that have no
 * handler of their own (tools that only publish, tests).
 */
export function callbackHandler (topic: string, validate: ValidateFn, onMessage: (topic: string, data: Uint8Array, from: string, validated?: unknown) => void | Promise<void>): TopicHandler<unknown> {
  return {
    async validate (data, from) {
      const checked = await validate(topic, data, from)
      if (typeof checked === 'string') return checked === 'accept' ? { outcome: 'accept', value: undefined } : { outcome: checked }
      return checked.outcome === 'accept' ? { outcome: 'accept', value: checked.value } : { outcome: checked.outcome }
    },
    deliver: async (value, data, from) => { await onMessage(topic, data, from, value) }
  }
}
