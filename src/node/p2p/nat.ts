import { networkInterfaces } from 'node:os'
import { multicodec as DCUTR_PROTOCOL } from '@libp2p/dcutr'
import { isPrivate, isPrivateIp } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { Circuit } from '@multiformats/multiaddr-matcher'
import type { Connection, ConnectionGater, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { AddressManager, ConnectionManager, Registrar } from '@libp2p/interface-internal'
import { ValidationError } from '../../protocol/errors.js'
import { HolePunchRefusedError } from './errors.js'
import { createThrottle, type Throttle } from './throttle.js'

/**
 * How a node behind a NAT is reached (docs/volunteers.md): AutoNAT v2 tells whether its
 * addresses are dialable, UPnP/NAT-PMP maps a port where the router allows it, otherwise it
 * holds slots on circuit relays and advertises the relayed addresses; DCUtR then tries to
 * replace a relayed connection by a direct one.
 */
export interface NatInit {
  /** Ask the router for a port mapping by UPnP or NAT-PMP (default true). */
  upnp?: boolean
  /**
   * Relay slots to hold: a number, or 'auto' (default) for 2 when none of the host's own
   * addresses is public (it is behind a NAT) and 0 otherwise.
   */
  relays?: number | 'auto'
  /**
   * Act as a circuit relay v2 server: 'auto' (default) when one of the host's own addresses
   * is public (a slot on a node behind a NAT would reach nobody), 'on' always, 'off' never.
   */
  relayServer?: 'auto' | 'on' | 'off'
  relayLimits?: Partial<RelayLimits>
  /** Find peers and their addresses through a Kademlia DHT among rebuilder nodes (default true). */
  dht?: boolean
}

export interface RelayLimits {
  /** Reservations held for other peers at once. */
  maxReservations: number
  /** Bytes one relayed connection may carry (each direction) before the relay drops it. */
  maxCircuitBytes: number
  /** Seconds one relayed connection may last before the relay drops it. */
  maxCircuitSeconds: number
  /** Reservation or circuit requests a peer may make per minute, and at once. */
  requestsPerMinute: number
  requestBurst: number
}

export const RELAY_DEFAULTS: RelayLimits = {
  maxReservations: 32,
  maxCircuitBytes: 8 * 1024 * 1024,
  maxCircuitSeconds: 180,
  requestsPerMinute: 30,
  requestBurst: 10
}

export const DEFAULT_RELAY_SLOTS = 2

/** Our own DHT: rebuilder nodes look each other up, not the IPFS network's nodes. */
export const DHT_PROTOCOL = '/neko-rebuilder/kad/1.0.0'

export function relayLimits (init: Partial<RelayLimits> = {}): RelayLimits {
  const limits = { ...RELAY_DEFAULTS, ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) }
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new ValidationError(`relayLimits.${field}`, `must be a positive integer, got ${String(value)}`)
  }
  return limits
}

/** Whether one of this host's own interface addresses is public: then it is not behind a NAT. */
export function hostHasPublicAddress (listen: string[], interfaces = networkInterfaces()): boolean {
  const ips: string[] = []
  for (const a of listen) {
    const host = multiaddr(a).getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    if (host == null) continue
    if (host === '0.0.0.0' || host === '::') {
      for (const list of Object.values(interfaces)) for (const i of list ?? []) if (!i.internal && (host === '::' || i.family === 'IPv4')) ips.push(i.address)
    } else ips.push(host)
  }
  return ips.some(ip => isPrivateIp(ip) === false && !ip.startsWith('fe80:'))
}

/** Whether a listen address is on loopback (127.0.0.0/8 or ::1). */
export function loopbackOnly (addr: string): boolean {
  return /^\/ip4\/127\.|^\/ip6\/::1\//.test(addr)
}

/** Relay slots to reserve: `/p2p-circuit` listen addresses, one per slot. */
export function relaySlots (init: NatInit, listen: string[]): number {
  const relays = init.relays ?? 'auto'
  // A node listening on loopback only has nobody to be reached by.
  if (relays === 'auto') return hostHasPublicAddress(listen) || listen.every(loopbackOnly) ? 0 : DEFAULT_RELAY_SLOTS
  if (!Number.isSafeInteger(relays) || relays < 0 || relays > 16) throw new ValidationError('relays', `must be 'auto' or an integer from 0 to 16, got ${String(relays)}`)
  return relays
}

export type ReachabilityMode = 'public' | 'port-mapped' | 'relayed' | 'local'

export interface Reachability {
  /**
   * public: an address of this node's own was confirmed dialable from elsewhere;
   * port-mapped: the router maps a port to it (UPnP/NAT-PMP) and that was confirmed;
   * relayed: others reach it only through relays; local: only on its own network.
   */
  mode: ReachabilityMode
  /** Addresses advertised to peers. */
  addresses: string[]
  /** Peer ids of the relays that hold a slot for this node. */
  relays: string[]
  connections: { direct: number, relayed: number }
  /** Whether this node relays for others now, and for how many. */
  relayServer: { serving: boolean, reservations: number }
}

/** One line: "relayed via 12D3…, 12D3…; 3 of 4 connections direct; relays for 2 peers". */
export function formatReachability (r: Reachability): string {
  const how = r.mode === 'relayed' ? `relayed via ${r.relays.join(', ')}` : r.mode === 'local' ? 'reachable on its local network only (so far)' : r.mode
  const total = r.connections.direct + r.connections.relayed
  const serving = r.relayServer.serving ? `; relays for ${r.relayServer.reservations} peer${r.relayServer.reservations === 1 ? '' : 's'}` : ''
  return `${how}; ${r.connections.direct} of ${total} connection${total === 1 ? '' : 's'} direct${serving}`
}

export interface ReachabilityComponents {
  addressManager: AddressManager
  connectionManager: ConnectionManager
}

/** A libp2p service that reads the address manager, which libp2p keeps to its services. */
export interface ReachabilityProbe {
  read: (reservations: number, serving: boolean) => Reachability
}

function publicDirect (ma: Multiaddr): boolean {
  return !Circuit.matches(ma) && isPrivate(ma) !== true
}

export function reachabilityProbe (): (components: ReachabilityComponents) => ReachabilityProbe {
  return (components) => {
    const confirmed = (): Array<{ multiaddr: Multiaddr, type: string }> => components.addressManager.getAddressesWithMetadata().filter(a => a.verified && publicDirect(a.multiaddr))
    return {
      read (reservations, serving) {
        const addresses = components.addressManager.getAddresses()
        const pub = confirmed()
        const relays = [...new Set(addresses.filter(a => Circuit.matches(a)).map(a => {
          const parts = a.getComponents()
          const circuit = parts.findIndex(c => c.name === 'p2p-circuit')
          return parts.slice(0, circuit).findLast(c => c.name === 'p2p')?.value ?? ''
        }).filter(id => id !== ''))]
        const mode: ReachabilityMode = pub.some(a => a.type === 'ip-mapping')
          ? 'port-mapped'
          : pub.length > 0 ? 'public' : relays.length > 0 ? 'relayed' : 'local'
        const conns = components.connectionManager.getConnections()
        const relayed = conns.filter(c => c.limits != null || Circuit.matches(c.remoteAddr)).length
        return { mode, addresses: addresses.map(String), relays, connections: { direct: conns.length - relayed, relayed }, relayServer: { serving, reservations } }
      }
    }
  }
}

/** Whether a connection runs over a relay (it is limited in bytes and time). */
export function overRelay (conns: Connection[]): boolean {
  const open = conns.filter(c => c.status === 'open')
  return open.length > 0 && open.every(c => c.limits != null || Circuit.matches(c.remoteAddr))
}

/** Whether this node relays for others, from the `relayServer` setting. */
export function relayServing (init: NatInit, listen: string[]): boolean {
  const mode = init.relayServer ?? 'auto'
  if (mode !== 'auto' && mode !== 'on' && mode !== 'off') throw new ValidationError('relayServer', `must be auto, on or off, got ${String(mode)}`)
  return mode === 'on' || (mode === 'auto' && hostHasPublicAddress(listen))
}

/**
 * Opens a request/response stream to `target`. With only a relayed connection to that peer
 * the stream runs on it: libp2p would dial again for an unlimited connection, and a second
 * circuit through the same relay has the same address, so it closes the new one as a
 * duplicate. Relayed streams are allowed (within the relay's limits); DCUtR upgrades the
 * connection where the NATs allow.
 */
export async function openStream (libp2p: Libp2p, target: PeerId | Multiaddr, protocol: string, options: { signal: AbortSignal }): Promise<Stream> {
  const peer = 'getComponents' in target ? undefined : target
  if (peer != null) {
    const open = libp2p.getConnections(peer).filter(c => c.status === 'open')
    const relayed = open.find(c => c.limits != null)
    if (relayed != null && open.every(c => c.limits != null)) return await relayed.newStream(protocol, { ...options, runOnLimitedConnection: true })
  }
  return await libp2p.dialProtocol(target, protocol, { ...options, runOnLimitedConnection: true })
}

export interface RelayGate {
  gater: ConnectionGater
  /** Why a hole-punch (DCUtR) request from `peer` is refused, if it is; it shares the reservation and circuit requests' rate. */
  denyHolePunch: (peer: PeerId) => 'rate' | 'penalised' | undefined
  /** Reservation, circuit and hole-punch requests refused so far, by reason. */
  refused: () => Record<'rate' | 'penalised', number>
}

/**
 * What this node's relay refuses, beyond what the relay server itself refuses (reservations
 * over its limit, circuits to peers without a reservation, circuits past their byte or time
 * limit): a penalised (graylisted) peer on either end of a circuit, and a peer over its
 * request rate, as gossip's admission does.
 */
export function createRelayGate (init: { limits: RelayLimits, penalised: (peer: string) => boolean, onRefused?: (peer: string, reason: string) => void }): RelayGate {
  const throttle: Throttle = createThrottle({
    peer: { perSecond: init.limits.requestsPerMinute / 60, burst: init.limits.requestBurst },
    // All peers together: as many as the slots could renew at once, then the peer rate each.
    global: { perSecond: Math.max(1, init.limits.maxReservations * init.limits.requestsPerMinute / 60), burst: init.limits.maxReservations * init.limits.requestBurst },
    maxPeers: init.limits.maxReservations * 8
  })
  const refused = { rate: 0, penalised: 0 }
  const refuse = (peer: PeerId, reason: keyof typeof refused): true => {
    refused[reason]++
    init.onRefused?.(peer.toString(), reason)
    return true
  }
  const reasonOf = (peer: PeerId): keyof typeof refused | undefined => {
    const reason = init.penalised(peer.toString()) ? 'penalised' : !throttle.take(peer.toString()) ? 'rate' : undefined
    if (reason !== undefined) refuse(peer, reason)
    return reason
  }
  const check = (peer: PeerId): boolean => reasonOf(peer) !== undefined
  return {
    gater: {
      denyInboundRelayReservation: check,
      denyOutboundRelayedConnection: (source, destination) => {
        if (init.penalised(destination.toString())) return refuse(destination, 'penalised')
        return check(source)
      }
    },
    denyHolePunch: reasonOf,
    refused: () => ({ ...refused })
  }
}

/**
 * Puts the relay gate in front of DCUtR's stream handler: each hole-punch request makes this
 * node dial the addresses the requester names, so a peer flooding them (or a penalised one)
 * is refused, as its reservation and circuit requests are. libp2p has no gater hook for
 * streams, so the handler DCUtR registered at start is wrapped once every service started.
 */
export function holePunchGate (gate: RelayGate): (components: { registrar: Registrar }) => { start: () => void, afterStart: () => Promise<void>, stop: () => void } {
  return ({ registrar }) => ({
    start () {},
    async afterStart () {
      const { handler, options } = registrar.getHandler(DCUTR_PROTOCOL)
      await registrar.handle(DCUTR_PROTOCOL, async (stream, connection) => {
        const refused = gate.denyHolePunch(connection.remotePeer)
        if (refused !== undefined) {
          stream.abort(new HolePunchRefusedError(connection.remotePeer.toString(), refused))
          return
        }
        await handler(stream, connection)
      }, { ...options, force: true })
    },
    stop () {}
  })
}
