import type { Multiaddr } from '@multiformats/multiaddr'

export interface ColocationInit {
  /** Live peers one address may have before any of them is penalised. */
  threshold: number
  /** Score per squared peer beyond the threshold (negative). */
  weight: number
}

/**
 * Gossipsub's own IP-colocation factor (P6) counts every peer whose score record it retains,
 * and it retains the record of a departed peer with a score of zero or less for
 * `retainScore`: a stream of short-lived peers behind one address (a NAT, a single-host
 * network, an attacker cycling identities) would graylist every honest peer there. This
 * counts only peers with an open connection now, and is handed to gossipsub as its
 * application-specific score (P5) in place of P6.
 */
export interface Colocation {
  opened: (peer: string, addr: Multiaddr) => void
  closed: (peer: string, addr: Multiaddr) => void
  /** Colocation penalty of a peer (0 or negative). */
  score: (peer: string) => number
  /** Live peers on an address. */
  peersOn: (ip: string) => number
}

export function ipOf (addr: Multiaddr): string | undefined {
  return addr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
}

export function createColocation (init: ColocationInit): Colocation {
  // ip -> peer -> open connections from that peer on that ip
  const byIp = new Map<string, Map<string, number>>()
  const ipsOf = new Map<string, Set<string>>()

  return {
    opened (peer, addr) {
      const ip = ipOf(addr)
      if (ip == null) return
      let peers = byIp.get(ip)
      if (peers == null) { peers = new Map(); byIp.set(ip, peers) }
      peers.set(peer, (peers.get(peer) ?? 0) + 1)
      let ips = ipsOf.get(peer)
      if (ips == null) { ips = new Set(); ipsOf.set(peer, ips) }
      ips.add(ip)
    },
    closed (peer, addr) {
      const ip = ipOf(addr)
      if (ip == null) return
      const peers = byIp.get(ip)
      const n = peers?.get(peer)
      if (peers == null || n == null) return
      if (n > 1) { peers.set(peer, n - 1); return }
      peers.delete(peer)
      if (peers.size === 0) byIp.delete(ip)
      const ips = ipsOf.get(peer)
      ips?.delete(ip)
      if (ips?.size === 0) ipsOf.delete(peer)
    },
    score (peer) {
      let score = 0
      for (const ip of ipsOf.get(peer) ?? []) {
        const surplus = (byIp.get(ip)?.size ?? 0) - init.threshold
        if (surplus > 0) score += surplus * surplus * init.weight
      }
      return score
    },
    peersOn: (ip) => byIp.get(ip)?.size ?? 0
  }
}
