export interface PenaltyInit {
  /** Score per squared invalid item (negative), as gossipsub's P4 weighs invalid messages. */
  weight: number
  /** Factor the counter keeps per second. */
  decay: number
  /** Peers tracked at most; the oldest record goes first. */
  maxPeers?: number
}

/**
 * Invalid items a peer sent outside gossip (forged back-fill answers), scored exactly as
 * gossipsub scores invalid gossip messages (squared counter, decaying each second), and
 * added to the peer's gossip score: a peer that lies over back-fill loses the same standing
 * as one that lies over gossip.
 */
export interface Penalties {
  add: (peer: string, invalid: number, now?: number) => void
  /** The penalty now (0 or negative). */
  score: (peer: string, now?: number) => number
}

export function createPenalties (init: PenaltyInit): Penalties {
  const maxPeers = init.maxPeers ?? 10_000
  const counters = new Map<string, { count: number, at: number }>()

  function current (peer: string, now: number): number {
    const c = counters.get(peer)
    if (c == null) return 0
    const count = c.count * init.decay ** ((now - c.at) / 1000)
    if (count < 0.01) {
      counters.delete(peer)
      return 0
    }
    return count
  }

  return {
    add (peer, invalid, now = Date.now()) {
      const count = current(peer, now) + invalid
      counters.delete(peer)
      if (counters.size >= maxPeers) {
        const oldest = counters.keys().next().value
        if (oldest != null) counters.delete(oldest)
      }
      counters.set(peer, { count, at: now })
    },
    score (peer, now = Date.now()) {
      const count = current(peer, now)
      return count * count * init.weight
    }
  }
}
