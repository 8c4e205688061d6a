import type { KeyObject } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import type { Libp2pOptions } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { circuitRelayServer, circuitRelayTransport, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { kadDHT } from '@libp2p/kad-dht'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { LevelDatastore } from 'datastore-level'
import { ping } from '@libp2p/ping'
import { bootstrap } from '@libp2p/bootstrap'
import { mdns } from '@libp2p/mdns'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { KEEP_ALIVE } from '@libp2p/interface'
import type { Connection, Libp2p, Peer, PeerId } from '@libp2p/interface'
import { LimitError, ValidationError } from '../../protocol/errors.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { BACKFILL_PROTOCOL, DEFAULT_MAX_MESSAGE_BYTES, MANIFEST_PROTOCOL, TOPICS } from './constants.js'
import { DialError, ListenError, PublishError } from './errors.js'
import { COLOCATION, gossipOptions, scoreThresholds, topicScoreParams } from './gossip.js'
import { createColocation } from './colocation.js'
import { createPenalties } from './penalty.js'
import { createThrottle, DEFAULT_CHECKPOINT_GLOBAL_RATE, DEFAULT_CHECKPOINT_PEER_RATE, DEFAULT_GLOBAL_RATE, DEFAULT_PEER_RATE } from './throttle.js'
import type { GossipInit, ValidateFn } from './gossip.js'
import { callbackHandler, topicRoute, type OutcomeCounts, type TopicHandler, type TopicRoute } from './topics.js'
import type { Topic } from './constants.js'
import { backfillLimits, createBackfillHandler, requestBackfill } from './backfill.js'
import type { BackfillInit, BackfillPage, BackfillRange, BackfillSource } from './backfill.js'
import { libp2pKeyFromIdentity } from './identity.js'
import { createCheckpointHandler, createProofHandler, requestCheckpoint, requestConsistency, TLOG_CHECKPOINT_LIMITS, TLOG_CHECKPOINT_PROTOCOL, TLOG_PROOF_LIMITS, TLOG_PROOF_PROTOCOL, type CheckpointSource, type ProofSource } from './tlog-proof.js'
import { createManifestHandler, manifestLimits, requestFileManifest } from './manifests.js'
import type { FetchedManifest, ManifestExchangeInit, ManifestSource } from './manifests.js'
import { createWitnessHandler, requestCosignature, TLOG_WITNESS_LIMITS, TLOG_WITNESS_PROTOCOL, type CheckpointPushTarget } from './tlog-push.js'
import { createStatementsHandler, requestStatements, statementsLimits, STATEMENTS_PROTOCOL, type Statements, type StatementsSource } from './statements.js'
import { createRelayGate, DHT_PROTOCOL, holePunchGate, loopbackOnly, overRelay, reachabilityProbe, relayLimits, relayServing, relaySlots } from './nat.js'
import type { NatInit, Reachability, ReachabilityProbe } from './nat.js'
import type { VerifyOptions } from '../../protocol/dsse.js'
import type { Digest } from '../../protocol/types.js'

export interface P2PComponents {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  /** The node's Ed25519 signing key; it is also its libp2p identity. */
  privateKey: KeyObject
  /**
   * For topics with no handler registered (`handle`): checks one gossip message before it is
   * delivered or relayed. Must not be slow: it gates propagation. Without it such topics'
   * messages are ignored.
   */
  validate?: ValidateFn
  /**
   * For topics with no handler registered: receives every accepted message once (not the
   * node's own publications), with the peer that delivered it and the value `validate`
   * returned for it, if any.
   */
  onMessage?: (topic: string, data: Uint8Array, from: string, validated?: unknown) => void | Promise<void>
  /** Serves back-fill requests from peers, typically from the store's sequence. */
  backfillSource: BackfillSource
  /** For topics with no handler registered: told of each message ignored over the admission rate, with the peer that delivered it. */
  onThrottled?: (topic: string, from: string) => void
  /** Answers witnesses' consistency-proof requests for this node's transparency log. */
  proofSource?: ProofSource
  /** Answers requests for the newest checkpoint message the node holds for a log. */
  checkpointSource?: CheckpointSource
  /** Serves the signed file manifests of images this node claimed; without it the protocol is not offered. */
  manifestSource?: ManifestSource
  /** Serves the capabilities statements and divergence reports this node holds; without it the protocol is not offered. */
  statementsSource?: StatementsSource
  /** As a witness: answers a checkpoint a log's node pushes to it; without it the protocol is not offered. */
  checkpointPushed?: CheckpointPushTarget
}

export interface P2PInit {
  /** Multiaddrs to listen on, e.g. `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /** Multiaddrs with `/p2p/<peerId>` to dial at start and keep tagged. */
  bootstrap?: string[]
  /** Discover peers on the local network (off unless asked). */
  mdns?: boolean
  /** Connection manager ceiling. */
  maxConnections?: number
  /**
   * How often a node with no connections dials its bootstrap list again (ms). Dropped
   * bootstrap and dialled peers are also redialled at once by libp2p (keep-alive tag).
   */
  redialIntervalMs?: number
  backfill?: BackfillInit
  gossip?: GossipInit
  manifests?: ManifestExchangeInit
  /** Reachability behind NATs: port mapping, relays, hole punching, the DHT. */
  nat?: NatInit
  /**
   * Directory of the peer store (a LevelDB): peers seen are kept across restarts and dialled
   * at start. In memory without one.
   */
  peerStorePath?: string
  /** Peers kept in the peer store at most (default 1,024): at start, the least recently seen beyond it are forgotten. */
  maxKnownPeers?: number
}

export interface P2PStats {
  peers: number
  /** Peers known to be subscribed to each topic. */
  topics: Record<string, number>
  /** Peers in this node's gossip mesh for each topic (those it relays full messages to). */
  mesh: Record<string, number>
  /** Gossip messages ignored unvalidated because their peer, or all peers, went over the rate. */
  throttled: number
  /** Whether and how other nodes reach this one. */
  reachability: Reachability
  /** Relay reservation, circuit and hole-punch (DCUtR) requests this node refused, by reason. */
  relayRefused: Record<string, number>
  /** Of those, checkpoint messages (their own buckets). */
  throttledCheckpoints: number
  /** Bytes this node's relayed connections carried since start, both directions, as counted against the relays' byte limits. */
  relayedBytes: number
  /** What the topic handlers made of the messages they checked (not those refused before: oversized, throttled). */
  gossip: OutcomeCounts
}

export type PeerEvent = 'connect' | 'disconnect'

export interface P2PNode {
  peerId: string
  multiaddrs: () => string[]
  start: () => Promise<void>
  stop: () => Promise<void>
  publish: (topic: string, data: Uint8Array) => Promise<{ recipients: number }>
  /**
   * Registers what the node does with one topic's messages (replacing the callbacks given as
   * components, for that topic). Register before `start`, so no message arrives unhandled.
   */
  handle: <T>(topic: Topic, handler: TopicHandler<T>) => void
  backfill: (peer: string, cursor: number, limit: number, range?: BackfillRange) => Promise<BackfillPage>
  /** Fetches and verifies a peer's signed file manifest of an image it claimed. */
  fileManifest: (peer: string, manifestDigest: Digest, verify: VerifyOptions) => Promise<FetchedManifest>
  connectedPeers: () => string[]
  /** Each connected peer, the address of its first connection and whether every connection to it runs over a relay. */
  peerList: () => Array<{ peerId: string, addr: string, relayed: boolean }>
  dial: (addr: string) => Promise<void>
  onPeer: (cb: (event: PeerEvent, peerId: string) => void) => void
  stats: () => P2PStats
  /** Gossipsub score this node gives a peer; negative after invalid messages. */
  score: (peerId: string) => number
  /**
   * Counts `invalid` items a peer sent outside gossip (a forged back-fill answer) against its
   * gossip score, as gossipsub counts invalid messages; a peer that falls below the graylist
   * threshold is disconnected.
   */
  penalize: (peerId: string, invalid: number) => void
  /** Whether a peer's score is below the gossip threshold (no exchanges with it beyond what it sends). */
  penalised: (peerId: string) => boolean
  /** Asks a log's node for an RFC 6962 consistency proof; throws TlogProofError. */
  consistencyProof: (peerId: string, origin: string, oldSize: number, newSize: number) => Promise<Uint8Array[]>
  /** Asks a peer for the newest checkpoint message it holds for `origin` (unchecked bytes); throws TlogProofError. */
  checkpoint: (peerId: string, origin: string) => Promise<Uint8Array>
  /** Asks a peer for the capabilities statements and divergence reports it holds (unchecked envelopes); throws StatementsError. */
  statements: (peerId: string) => Promise<Statements>
  /** Pushes this node's checkpoint message to a witness; its answer's bytes (unchecked); throws TlogProofError. */
  pushCheckpoint: (peerId: string, message: Uint8Array) => Promise<Uint8Array>
}

export const DEFAULT_MAX_CONNECTIONS = 64
export const DEFAULT_REDIAL_INTERVAL_MS = 30_000

/**
 * libp2p redials peers whose tag name starts with `keep-alive` when their connection drops
 * (a few tries with back-off). Bootstrap peers and peers dialled on purpose get one.
 */
const KEEP_ALIVE_BOOTSTRAP = `${KEEP_ALIVE}-bootstrap`
const KEEP_ALIVE_DIALLED = `${KEEP_ALIVE}-dialled`

const KNOWN_TOPICS = new Set<string>(Object.values(TOPICS))

function parseMultiaddr (field: string, addr: string): Multiaddr {
  try {
    return multiaddr(addr)
  } catch (err) {
    throw new ValidationError(field, `not a multiaddr: ${(err as Error).message}`)
  }
}

/** A peer given as `12D3KooW…` or as a multiaddr (`/ip4/…/tcp/…/p2p/…`). */
function parsePeer (peer: string): PeerId | Multiaddr {
  if (peer.startsWith('/')) return parseMultiaddr('peer', peer)
  try {
    return peerIdFromString(peer)
  } catch (err) {
    throw new ValidationError('peer', `not a peer id or multiaddr: ${(err as Error).message}`)
  }
}

/** The peer id in a `12D3KooW…` or a multiaddr ending in `/p2p/…`. */
function parsePeerId (peer: string): PeerId {
  const p = parsePeer(peer)
  if (!('getComponents' in p)) return p
  const id = p.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id == null) throw new ValidationError('peer', 'the multiaddr names no peer')
  return peerIdFromString(id)
}

type Services = { pubsub: GossipSub, reachability: ReachabilityProbe, relay?: CircuitRelayService } & Record<string, unknown>

/** Peers from the stored peer store dialled at start, at most. */
const KNOWN_PEERS_AT_START = 16
/**
 * How long stored peers and their addresses are kept since last learnt: libp2p's defaults (an
 * hour for addresses, six for peers) would leave a node restarted the next day with none.
 */
const KNOWN_PEER_MAX_AGE_MS = 30 * 24 * 3600_000
const DEFAULT_MAX_KNOWN_PEERS = 1024
/** Peer store metadata: when a peer was last identified (ms since the epoch, as text). */
const LAST_SEEN = 'neko-last-seen'
const RESERVATION_TIMEOUT_MS = 30_000
/** How long a node short of relay slots waits before asking a relay again. */
const RELAY_RETRY_MS = 120_000

/**
 * libp2p lists each listen address that failed as `  ADDR: Error: listen EADDRINUSE: ...`
 * under a paragraph of advice about its own options; keep the addresses and reasons.
 */
function listenFailures (message: string): string {
  const lines = message.split('\n').map(l => /^\s+(\/\S+): (?:\w*Error: )?(?:listen \w+: )?(.*)$/.exec(l)).filter(m => m != null)
  if (lines.length === 0) return `cannot listen: ${message.split('\n')[0] ?? message}`
  return lines.map(m => `cannot listen on ${m[1] ?? ''}: ${m[2] ?? ''}`).join('; ')
}

/** A dial error in one line: libp2p wraps the reasons of each address tried in an AggregateError. */
function errorText (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorText).join('; ')
  return err instanceof Error ? `${err.name !== 'Error' ? `${err.name}: ` : ''}${err.message}` : String(err)
}

/** Router methods the GossipSub interface leaves out but the implementation has. */
interface GossipRouter {
  getScore: (peerId: string) => number
  getMeshPeers: (topic: string) => string[]
}

export async function createP2PNode (components: P2PComponents, init: P2PInit): Promise<P2PNode> {
  const log = componentLog(components.logger, 'p2p')
  const limits = backfillLimits(init.backfill)
  const maxMessageBytes = init.gossip?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const maxConnections = init.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  const maxKnownPeers = init.maxKnownPeers ?? DEFAULT_MAX_KNOWN_PEERS
  if (!Number.isSafeInteger(maxKnownPeers) || maxKnownPeers < 1) throw new ValidationError('maxKnownPeers', `must be a positive integer, got ${String(maxKnownPeers)}`)
  const listen = init.listen.map(a => { parseMultiaddr('listen', a); return a })
  const bootstrapList = (init.bootstrap ?? []).map(a => { parseMultiaddr('bootstrap', a); return a })
  // Bootstrap addresses by the peer id they name, to report a failed dial by its address.
  const bootstrapByPeer = new Map<string, string[]>()
  for (const a of bootstrapList) {
    const id = multiaddr(a).getComponents().findLast(c => c.name === 'p2p')?.value
    if (id != null) bootstrapByPeer.set(id, [...(bootstrapByPeer.get(id) ?? []), a])
  }

  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (bootstrapList.length > 0) peerDiscovery.push(bootstrap({ list: bootstrapList, timeout: 100, tagName: KEEP_ALIVE_BOOTSTRAP }))
  if (init.mdns === true) peerDiscovery.push(mdns())

  const colocation = createColocation(COLOCATION)
  const topicScores = topicScoreParams()
  const penalties = createPenalties({ weight: topicScores.invalidMessageDeliveriesWeight, decay: topicScores.invalidMessageDeliveriesDecay })
  // Called by the relay's gate and by exchanges, only once libp2p (and so `router`) exists.
  const penalised = (peerId: string): boolean => penalties.score(peerId) < scoreThresholds.gossipThreshold || router.getScore(peerId) < scoreThresholds.gossipThreshold

  const nat = init.nat ?? {}
  const slots = relaySlots(nat, listen)
  const rLimits = relayLimits(nat.relayLimits)
  const serving = relayServing(nat, listen)
  const relayGate = createRelayGate({
    limits: rLimits,
    penalised,
    onRefused: (peer, reason) => { log.debug({ peer, reason }, 'relay request refused') }
  })
  // UPnP searches the local network by multicast: only for a node listening beyond loopback.
  const upnp = nat.upnp === true && listen.some(a => !loopbackOnly(a))
  const datastore = init.peerStorePath != null ? new LevelDatastore(init.peerStorePath) : undefined
  await datastore?.open()

  const libp2p = await createLibp2p({
    start: false,
    privateKey: libp2pKeyFromIdentity(components.privateKey),
    ...(datastore != null ? { datastore, peerStore: { maxAddressAge: KNOWN_PEER_MAX_AGE_MS, maxPeerAge: KNOWN_PEER_MAX_AGE_MS } } : {}),
    // Each `/p2p-circuit` listen address is one relay slot to reserve.
    addresses: { listen: [...listen, ...Array.from({ length: slots }, () => '/p2p-circuit')] },
    // A reservation answered slowly (a busy relay, a loaded home machine) is not given up at 5 s.
    transports: [tcp(), circuitRelayTransport({ reservationCompletionTimeout: RESERVATION_TIMEOUT_MS })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: relayGate.gater,
    peerDiscovery,
    connectionManager: { maxConnections },
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      pubsub: gossipsub(gossipOptions(init.gossip ?? {}, { colocation, penalties })),
      reachability: reachabilityProbe(),
      autoNAT: autoNATv2(),
      dcutr: dcutr(),
      // Hole-punch requests pass the relay's gate: rate per peer, none from penalised peers.
      holePunchGate: holePunchGate(relayGate),
      ...(serving
        ? {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: rLimits.maxReservations,
                applyDefaultLimit: true,
                defaultDataLimit: BigInt(rLimits.maxCircuitBytes),
                defaultDurationLimit: rLimits.maxCircuitSeconds * 1000
              }
            })
          }
        : {}),
      // A mapping the router made is advertised at once: upnp-nat refuses a router whose own
      // external address is private (behind another NAT), and waiting for AutoNAT would leave
      // it unadvertised until some new AutoNAT server happens to connect. Relay slots are kept
      // (the host's own address stays private), so a peer that cannot dial it still gets through.
      ...(upnp ? { upnp: uPnPNAT({ portMappingDescription: 'neko-rebuilder', autoConfirmAddress: true }) } : {}),
      // Peer routing (a peer's addresses from its id) and more peers than the bootstrap list.
      ...(nat.dht !== false ? { dht: kadDHT({ protocol: DHT_PROTOCOL }) } : {})
    }
  }) as unknown as Libp2p<Services>
  const pubsub = libp2p.services.pubsub
  const router = pubsub as unknown as GossipRouter
  const throttle = createThrottle({ peer: init.gossip?.peerRate ?? DEFAULT_PEER_RATE, global: init.gossip?.globalRate ?? DEFAULT_GLOBAL_RATE, maxPeers: maxConnections * 4 })
  const checkpointThrottle = createThrottle({ peer: init.gossip?.checkpointPeerRate ?? DEFAULT_CHECKPOINT_PEER_RATE, global: init.gossip?.checkpointGlobalRate ?? DEFAULT_CHECKPOINT_GLOBAL_RATE, maxPeers: maxConnections * 4 })
  const outcomes: OutcomeCounts = { accepted: 0, rejected: 0, ignored: 0 }
  const routes = new Map<string, TopicRoute>()
  function handle<T> (topic: string, handler: TopicHandler<T>): void {
    if (!KNOWN_TOPICS.has(topic)) throw new ValidationError('topic', `unknown topic ${topic}`)
    // Checkpoints have admission buckets of their own: a witness burst does not starve claims.
    const route = topicRoute(topic, handler, { maxMessageBytes, log, throttle: topic === TOPICS.checkpoints ? checkpointThrottle : throttle, counts: outcomes })
    routes.set(topic, route)
    pubsub.topicValidators.set(topic, route.validator)
  }
  // Validators are in place before the first peer can send anything: the callbacks given,
  // until a topic's own handler is registered.
  const { validate, onMessage, onThrottled } = components
  for (const topic of KNOWN_TOPICS) {
    const fallback = validate != null ? callbackHandler(topic, validate, onMessage ?? (() => {})) : { validate: () => ({ outcome: 'ignore' as const }), deliver: () => {} }
    handle(topic, { ...fallback, ...(onThrottled != null ? { throttled: (from: string) => { onThrottled(topic, from) } } : {}) })
  }

  // libp2p refuses inbound connections only once the cap is reached, so simultaneous
  // handshakes can overshoot it, and its pruner spares connections with open streams
  // (every gossip peer has one). Close the newest connection beyond the cap instead.
  const closing = new WeakSet<object>()
  libp2p.addEventListener('connection:open', (evt) => {
    colocation.opened(evt.detail.remotePeer.toString(), evt.detail.remoteAddr)
    const live = libp2p.getConnections().filter(c => c.status === 'open' && !closing.has(c)).length
    if (live <= maxConnections) return
    const conn = evt.detail
    closing.add(conn)
    log.debug({ peer: conn.remotePeer.toString(), limit: maxConnections }, 'closing connection beyond maxConnections')
    conn.close().catch((err: unknown) => { conn.abort(err instanceof Error ? err : new Error(String(err))) })
  })
  libp2p.addEventListener('connection:close', (evt) => {
    colocation.closed(evt.detail.remotePeer.toString(), evt.detail.remoteAddr)
  })
  const backfillServer = createBackfillHandler({ source: components.backfillSource, log }, limits)
  const mLimits = manifestLimits(init.manifests)
  const manifestServer = components.manifestSource != null ? createManifestHandler({ source: components.manifestSource, log }, mLimits) : undefined
  const sLimits = statementsLimits()
  const statementsServer = components.statementsSource != null ? createStatementsHandler({ source: components.statementsSource, log }, sLimits) : undefined

  pubsub.addEventListener('gossipsub:message', (evt) => {
    const msg = evt.detail.msg
    const from = evt.detail.propagationSource.toString()
    Promise.resolve()
      .then(async () => { await routes.get(msg.topic)?.deliver(msg, from) })
      .catch((err: unknown) => { log.error({ err, topic: msg.topic, from }, 'message handler failed') })
  })

  let started = false
  let redialTimer: ReturnType<typeof setInterval> | undefined
  let relayTimer: ReturnType<typeof setInterval> | undefined

  // libp2p dials no discovered peer by itself: a neighbour found by mDNS (or a bootstrap
  // peer) is dialled here, unless already connected or the connection cap is reached.
  const discovering = new Set<string>()
  libp2p.addEventListener('peer:discovery', (evt) => {
    const peer = evt.detail.id
    const key = peer.toString()
    if (!started || peer.equals(libp2p.peerId) || discovering.has(key) || libp2p.getConnections(peer).length > 0) return
    if (libp2p.getConnections().length >= maxConnections) return
    discovering.add(key)
    const bootstrapAddrs = bootstrapByPeer.get(key)
    libp2p.dial(bootstrapAddrs != null ? bootstrapAddrs.map(a => multiaddr(a)) : peer)
      .then(() => { log.debug({ peer: key }, 'dialled a discovered peer') })
      .catch((err: unknown) => {
        // A bootstrap address that fails is the volunteer's to fix (a typo, a firewall): say so.
        if (bootstrapAddrs != null) log.info({ addr: bootstrapAddrs.join(' '), error: errorText(err) }, 'bootstrap peer unreachable')
        else log.debug({ err, peer: key }, 'dialling a discovered peer failed')
      })
      .finally(() => discovering.delete(key))
  })

  libp2p.addEventListener('peer:connect', (evt) => {
    const peer = evt.detail.toString()
    // How the peer was first reached: by the time this runs, DCUtR may already have opened a
    // direct connection beside the relayed one it replaces.
    const conns = libp2p.getConnections(evt.detail).sort((a, b) => a.timeline.open - b.timeline.open)
    const addr = conns[0]?.remoteAddr.toString()
    // Which side dialled: an outbound connection to a peer neither configured nor on the local
    // network was found through the network (the DHT).
    log.info({ peer, addr, direction: conns[0]?.direction, peers: libp2p.getPeers().length, ...(conns[0] != null && overRelay([conns[0]]) ? { relayed: true } : {}) }, 'peer connected')
  })
  // Bytes carried over relays, as the relays count them against their limits: a relayed
  // connection's limit starts at what the relay granted and shrinks with every byte either way.
  const relayGranted = new WeakMap<Connection, bigint>()
  let relayedBytesClosed = 0
  const relayedBytesOf = (conn: Connection): number => {
    const granted = relayGranted.get(conn)
    const left = conn.limits?.bytes
    return granted == null || left == null ? 0 : Number(granted - left)
  }
  libp2p.addEventListener('connection:close', (evt) => {
    const conn = evt.detail
    if (!relayGranted.has(conn)) return
    const bytes = relayedBytesOf(conn)
    relayedBytesClosed += bytes
    relayGranted.delete(conn)
    log.info({ peer: conn.remotePeer.toString(), bytes, relayedBytes: relayedBytesClosed }, 'relayed connection closed')
  })
  // A relayed connection that DCUtR (or a dial) replaced by a direct one.
  libp2p.addEventListener('connection:open', (evt) => {
    const conn = evt.detail
    if (conn.limits?.bytes != null) relayGranted.set(conn, conn.limits.bytes)
    if (conn.limits != null) return
    const peer = conn.remotePeer
    if (libp2p.getConnections(peer).some(c => c !== conn && c.limits != null)) {
      log.info({ peer: peer.toString(), addr: conn.remoteAddr.toString() }, 'direct connection to a peer reached over a relay')
    }
  })
  let lastMode: string | undefined
  libp2p.addEventListener('self:peer:update', () => {
    if (!started) return
    const r = libp2p.services.reachability.read(0, false)
    const key = `${r.mode} ${r.relays.join(',')}`
    if (key === lastMode) return
    lastMode = key
    log.info({ reachability: r.mode, relays: r.relays, addrs: r.addresses }, 'reachability changed')
  })
  libp2p.addEventListener('peer:disconnect', (evt) => {
    log.info({ peer: evt.detail.toString(), peers: libp2p.getPeers().length }, 'peer disconnected')
  })

  // Last resort after an outage longer than libp2p's redial tries: an isolated node goes
  // back to its bootstrap list.
  function redialBootstrap (): void {
    if (!started || libp2p.getConnections().length > 0) return
    if (bootstrapList.length > 0) log.info({ peers: bootstrapList.length }, 'no connections: dialling the bootstrap list again')
    for (const addr of bootstrapList) {
      libp2p.dial(multiaddr(addr)).catch((err: unknown) => { log.info({ addr, error: errorText(err) }, 'bootstrap peer unreachable') })
    }
    dialKnownPeers()
  }

  const lastSeen = (p: Peer): number => Number(Buffer.from(p.metadata.get(LAST_SEEN) ?? new Uint8Array()).toString('utf8')) || 0

  // Every peer identified or named by the DHT is stored: a long-running node would keep
  // them all. The least recently seen beyond the limit (never identified ones first) go.
  async function forgetOldPeers (): Promise<void> {
    const peers = await libp2p.peerStore.all({ filters: [p => !p.id.equals(libp2p.peerId)] })
    if (peers.length <= maxKnownPeers) return
    const old = peers.sort((a, b) => lastSeen(b) - lastSeen(a)).slice(maxKnownPeers)
    for (const p of old) await libp2p.peerStore.delete(p.id)
    log.info({ forgotten: old.length, kept: maxKnownPeers }, 'forgot the peers seen least recently')
  }

  // Peers seen before (the stored peer store): a node whose bootstrap peers are gone still
  // finds the network through them. Those seen most recently first.
  function dialKnownPeers (): void {
    const skip = new Set([...bootstrapByPeer.keys(), libp2p.peerId.toString()])
    libp2p.peerStore.all({ filters: [p => p.addresses.length > 0 && !skip.has(p.id.toString()) && libp2p.getConnections(p.id).length === 0] })
      .then(peers => {
        const pick = peers.sort((a, b) => lastSeen(b) - lastSeen(a)).slice(0, KNOWN_PEERS_AT_START)
        if (pick.length > 0) log.info({ peers: pick.length, known: peers.length }, 'dialling peers seen before')
        for (const p of pick) {
          libp2p.dial(p.id).catch((err: unknown) => { log.debug({ peer: p.id.toString(), error: errorText(err) }, 'a peer seen before is unreachable') })
        }
      })
      .catch((err: unknown) => { log.warn({ err }, 'reading the stored peers failed') })
  }
  libp2p.addEventListener('peer:identify', (evt) => {
    libp2p.peerStore.merge(evt.detail.peerId, { metadata: { [LAST_SEEN]: Buffer.from(String(Date.now()), 'utf8') } }).catch(() => {})
  })

  // The relay transport asks a relay for a slot once per connection: a slot refused or timed
  // out is asked for again only after a reconnect. A node short of slots reconnects to a
  // relay it holds none on, at most once per RELAY_RETRY_MS each.
  const relayRetried = new Map<string, number>()
  async function retryRelays (): Promise<void> {
    if (!started || slots === 0) return
    const have = new Set(libp2p.services.reachability.read(0, false).relays)
    if (have.size >= slots) return
    const now = Date.now()
    for (const conn of libp2p.getConnections()) {
      const peer = conn.remotePeer
      const key = peer.toString()
      if (have.has(key) || conn.limits != null || now - conn.timeline.open < RELAY_RETRY_MS / 4 || now - (relayRetried.get(key) ?? 0) < RELAY_RETRY_MS) continue
      const protocols: string[] = await libp2p.peerStore.get(peer).then(p => p.protocols, () => [])
      if (!protocols.includes(RELAY_V2_HOP_CODEC)) continue
      relayRetried.set(key, now)
      log.info({ peer: key }, 'no relay slot on a relay: reconnecting to ask again')
      await libp2p.hangUp(peer)
      await libp2p.dial(peer)
    }
  }

  /** Logs when a request/response exchange with `peer` ran over a relay (within its limits). */
  function noteRelay (what: string, peer: string): void {
    let id: PeerId
    try { id = parsePeerId(peer) } catch { return }
    if (overRelay(libp2p.getConnections(id))) log.info({ peer: id.toString(), protocol: what }, `${what} over a relay`)
  }

  /** One request to a peer by id; said when it went over a relay. */
  async function asked<T> (what: string, peer: string, request: (id: PeerId) => Promise<T>): Promise<T> {
    const answer = await request(peerIdFromString(peer))
    noteRelay(what, peer)
    return answer
  }

  return {
    peerId: libp2p.peerId.toString(),
    multiaddrs: () => libp2p.getMultiaddrs().map(String),

    async start () {
      if (started) return
      try {
        await libp2p.start()
      } catch (err) {
        if ((err as Error).name === 'UnsupportedListenAddressesError') throw new ListenError(listenFailures((err as Error).message))
        throw err
      }
      await libp2p.handle(BACKFILL_PROTOCOL, backfillServer.handler, {
        // Above the handler's limits, so the handler, not the muxer, answers extra streams with
        // "busy" (the muxer also counts streams the peer has not closed on its side yet).
        maxInboundStreams: Math.max(limits.maxConcurrentStreams, limits.maxStreamsPerPeer) + 1,
        // Request/response protocols work over a relay, within its byte and time limits.
        runOnLimitedConnection: true
      })
      if (components.proofSource !== undefined) {
        await libp2p.handle(TLOG_PROOF_PROTOCOL, createProofHandler({ source: components.proofSource, log }), { maxInboundStreams: TLOG_PROOF_LIMITS.maxConcurrentStreams + 1, runOnLimitedConnection: true })
      }
      if (components.checkpointSource !== undefined) {
        await libp2p.handle(TLOG_CHECKPOINT_PROTOCOL, createCheckpointHandler({ source: components.checkpointSource, log }), { maxInboundStreams: TLOG_CHECKPOINT_LIMITS.maxConcurrentStreams + 1, runOnLimitedConnection: true })
      }
      if (manifestServer != null) {
        await libp2p.handle(MANIFEST_PROTOCOL, manifestServer.handler, { maxInboundStreams: Math.max(mLimits.maxConcurrentStreams, mLimits.maxStreamsPerPeer) + 1, runOnLimitedConnection: true })
      }
      if (components.checkpointPushed !== undefined) {
        await libp2p.handle(TLOG_WITNESS_PROTOCOL, createWitnessHandler({ target: components.checkpointPushed, log }), { maxInboundStreams: TLOG_WITNESS_LIMITS.maxConcurrentStreams + 1, runOnLimitedConnection: true })
      }
      if (statementsServer != null) {
        await libp2p.handle(STATEMENTS_PROTOCOL, statementsServer.handler, { maxInboundStreams: Math.max(sLimits.maxConcurrentStreams, sLimits.maxStreamsPerPeer) + 1, runOnLimitedConnection: true })
      }
      for (const topic of KNOWN_TOPICS) pubsub.subscribe(topic)
      started = true
      redialTimer = setInterval(redialBootstrap, init.redialIntervalMs ?? DEFAULT_REDIAL_INTERVAL_MS)
      redialTimer.unref()
      relayTimer = setInterval(() => { retryRelays().catch((err: unknown) => { log.debug({ err }, 'asking relays again failed') }) }, RELAY_RETRY_MS / 4)
      relayTimer.unref()
      if (datastore != null) await forgetOldPeers().catch((err: unknown) => { log.warn({ err }, 'forgetting old peers failed') })
      dialKnownPeers()
      log.debug({ peerId: libp2p.peerId.toString(), addrs: libp2p.getMultiaddrs().map(String) }, 'p2p node started')
    },

    async stop () {
      if (!started) return
      started = false
      clearInterval(redialTimer)
      clearInterval(relayTimer)
      await libp2p.stop()
      await datastore?.close()
      log.info('p2p node stopped')
    },

    async publish (topic, data) {
      if (!started) throw new PublishError('the node is not started')
      if (!KNOWN_TOPICS.has(topic)) throw new ValidationError('topic', `unknown topic ${topic}`)
      if (data.byteLength > maxMessageBytes) throw new LimitError('data', maxMessageBytes, data.byteLength)
      const result = await pubsub.publish(topic, data)
      return { recipients: result.recipients.length }
    },

    handle,

    async backfill (peer, cursor, limit, range) {
      const page = await requestBackfill(libp2p, parsePeer(peer), cursor, limit, limits, range)
      noteRelay('back-fill', peer)
      return page
    },

    async fileManifest (peer, manifestDigest, verify) {
      const fetched = await requestFileManifest(libp2p, parsePeer(peer), manifestDigest, verify, mLimits)
      noteRelay('file manifest', peer)
      return fetched
    },

    connectedPeers: () => libp2p.getPeers().map(String),

    peerList: () => libp2p.getPeers().map(id => {
      const conns = libp2p.getConnections(id)
      return { peerId: id.toString(), addr: conns[0]?.remoteAddr.toString() ?? '', relayed: overRelay(conns) }
    }),

    async dial (addr) {
      const ma = parseMultiaddr('addr', addr)
      let conn
      try {
        conn = await libp2p.dial(ma)
      } catch (err) {
        throw new DialError(`could not dial ${addr}: ${(err as Error).message}`)
      }
      // A peer dialled on purpose is one to keep: libp2p redials it if the connection drops.
      await libp2p.peerStore.merge(conn.remotePeer, { tags: { [KEEP_ALIVE_DIALLED]: { value: 50 } } })
    },

    onPeer (cb) {
      libp2p.addEventListener('peer:connect', (evt) => { cb('connect', evt.detail.toString()) })
      libp2p.addEventListener('peer:disconnect', (evt) => { cb('disconnect', evt.detail.toString()) })
    },

    stats () {
      const topics: Record<string, number> = {}
      const mesh: Record<string, number> = {}
      for (const topic of KNOWN_TOPICS) {
        topics[topic] = started ? pubsub.getSubscribers(topic).length : 0
        mesh[topic] = started ? router.getMeshPeers(topic).length : 0
      }
      const reachability = libp2p.services.reachability.read(libp2p.services.relay?.reservations.size ?? 0, serving)
      const relayedBytes = relayedBytesClosed + libp2p.getConnections().reduce((sum, c) => sum + relayedBytesOf(c), 0)
      return { peers: libp2p.getPeers().length, topics, mesh, throttled: throttle.refused() + checkpointThrottle.refused(), throttledCheckpoints: checkpointThrottle.refused(), reachability, relayRefused: relayGate.refused(), relayedBytes, gossip: { ...outcomes } }
    },

    score: (peerId) => router.getScore(peerId),

    penalize (peerId, invalid) {
      if (invalid <= 0) return
      penalties.add(peerId, invalid)
      const penalty = penalties.score(peerId)
      log.info({ peer: peerId, invalid, penalty }, 'peer penalised for invalid items')
      // Judged by the penalty itself: gossipsub caches scores for a heartbeat.
      if (penalty < scoreThresholds.graylistThreshold) {
        let id: PeerId
        try { id = peerIdFromString(peerId) } catch { return }
        // Not redialled either, even if it was a bootstrap peer or dialled on purpose.
        libp2p.peerStore.merge(id, { tags: { [KEEP_ALIVE_BOOTSTRAP]: undefined, [KEEP_ALIVE_DIALLED]: undefined } })
          .catch(() => {})
          .then(async () => { await libp2p.hangUp(id) })
          .catch((err: unknown) => { log.debug({ err, peer: peerId }, 'hanging up on a penalised peer failed') })
      }
    },

    penalised,

    consistencyProof: async (peerId, origin, oldSize, newSize) => await asked('consistency proof', peerId, async (p) => await requestConsistency(libp2p, p, origin, oldSize, newSize)),
    checkpoint: async (peerId, origin) => await asked('checkpoint', peerId, async (p) => await requestCheckpoint(libp2p, p, origin)),
    statements: async (peerId) => await asked('statements', peerId, async (p) => await requestStatements(libp2p, p, sLimits)),
    pushCheckpoint: async (peerId, message) => await asked('checkpoint push', peerId, async (p) => await requestCosignature(libp2p, p, message))
  }
}
