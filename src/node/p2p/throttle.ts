import { createRateLimiter } from '../rate-limit.js'

export interface ThrottleInit {
  peer: { perSecond: number, burst: number }
  global: { perSecond: number, burst: number }
  /** Peers tracked at most. */
  maxPeers?: number
}

/**
 * Admission of gossip messages to validation: a token bucket per delivering peer and one for
 * all peers together (which light senders may exceed, see `take`). Verifying and storing is the costly part of a message; a flood beyond
 * these rates is ignored before either, so it cannot starve the node's HTTP feed, pings or
 * other peers.
 */
export interface Throttle {
  /** Takes a token for a message delivered by `peer`; false when over either rate. */
  take: (peer: string, now?: number) => boolean
  /** Messages refused so far. */
  refused: () => number
}

export const DEFAULT_PEER_RATE = { perSecond: 10, burst: 50 } as const
export const DEFAULT_GLOBAL_RATE = { perSecond: 40, burst: 100 } as const
/**
 * Checkpoints have buckets of their own: a burst of claims must not crowd out the checkpoint
 * that covers them (a throttled message stays in gossipsub's seen cache, so no copy of it gets
 * through later). A log signs at most one a second and each witness cosigns it once, so a peer
 * delivers a few a second; checking one costs a few signature verifications, no store work.
 */
export const DEFAULT_CHECKPOINT_PEER_RATE = { perSecond: 20, burst: 100 } as const
export const DEFAULT_CHECKPOINT_GLOBAL_RATE = { perSecond: 200, burst: 400 } as const

export function createThrottle (init: ThrottleInit): Throttle {
  const peers = createRateLimiter({ perMinute: init.peer.perSecond * 60, burst: init.peer.burst, maxKeys: init.maxPeers ?? 1024 })
  const global = createRateLimiter({ perMinute: init.global.perSecond * 60, burst: init.global.burst, maxKeys: 1 })
  let refused = 0
  return {
    take (peer, now = Date.now()) {
      // A peer that has used less than half its burst lately is a light sender (an honest
      // peer relaying a release): it is served even when heavy senders have emptied the
      // shared bucket, so a flood cannot crowd it out. Heavy senders share what is left.
      const light = peers.tokens(peer, now) >= init.peer.burst / 2
      if (peers.take(peer, now) && (global.take('', now) || light)) return true
      refused++
      return false
    },
    refused: () => refused
  }
}
