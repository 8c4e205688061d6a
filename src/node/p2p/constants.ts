import { LIMITS } from '../../protocol/limits.js'

/** Gossip topics. Versioned: a change of message meaning, or of how gossip carries it (version 2: no libp2p signature), gets a new topic. */
export const TOPICS = {
  announcements: '/neko-rebuilder/announcements/2',
  claims: '/neko-rebuilder/claims/2',
  capabilities: '/neko-rebuilder/capabilities/2',
  /** Signed checkpoints of each node's transparency log, and witnesses' cosignatures of them. */
  checkpoints: '/neko-rebuilder/checkpoints/2',
  /** Signed divergence reports: why two builders' images of a target differ (docs/network.md). */
  divergences: '/neko-rebuilder/divergences/2',
  /** Signed smoke test results (in-toto Test Results) of rebuilt images: shown beside verdicts, never votes. */
  testResults: '/neko-rebuilder/test-results/1',
  /** Signed, expiring notices of which targets a builder is building now (shared work, docs/network.md). */
  notices: '/neko-rebuilder/notices/1'
} as const

export type Topic = typeof TOPICS[keyof typeof TOPICS]

/** Request/response protocol that lets a joining node catch up on what it missed. */
export const BACKFILL_PROTOCOL = '/neko-rebuilder/backfill/1.0.0'

/**
 * Largest gossip message (one signed envelope) a node accepts or publishes: the
 * protocol's envelope limit, since a message is exactly one envelope.
 */
export const DEFAULT_MAX_MESSAGE_BYTES: number = LIMITS.envelopeBytes

/**
 * Largest gossipsub RPC frame read from a peer. An RPC batches several messages and
 * control entries, so it is larger than one message; beyond it the peer's stream is dropped.
 */
export const DEFAULT_MAX_RPC_BYTES = 4 * 1024 * 1024

export const BACKFILL_DEFAULTS = {
  /** Items per response. */
  maxItems: 128,
  /** A request is two small integers in JSON. */
  maxRequestBytes: 256,
  /** Sum of item bytes in one response; the source is told it as `maxBytes`. */
  maxResponseBytes: 8 * 1024 * 1024,
  /** One envelope. */
  maxItemBytes: DEFAULT_MAX_MESSAGE_BYTES,
  /** Inbound back-fill streams served at once, across all peers. */
  maxConcurrentStreams: 8,
  /** Inbound back-fill streams served at once to one peer. */
  maxStreamsPerPeer: 2,
  /** From stream open to the request frame. */
  requestTimeoutMs: 2_000,
  /** Whole exchange, request to final frame. */
  timeoutMs: 10_000
} as const

/** Production heartbeat; tests and the devnet pass a shorter one. */
export const DEFAULT_HEARTBEAT_MS = 700

/** Request/response protocol for the signed file manifest of an image a builder claimed. */
export const MANIFEST_PROTOCOL = '/neko-rebuilder/file-manifest/1.0.0'

export const MANIFEST_DEFAULTS = {
  /** Entries in one manifest, across layers. */
  maxEntries: 1_000_000,
  /** A request is one digest in JSON. */
  maxRequestBytes: 256,
  /** One entry frame: a path, a link target and a few numbers. */
  maxEntryBytes: 16 * 1024,
  /** The header frame: one signed envelope. */
  maxHeaderBytes: DEFAULT_MAX_MESSAGE_BYTES,
  /** Sum of entry bytes in one response. */
  maxResponseBytes: 256 * 1024 * 1024,
  /** Inbound manifest streams served at once, across all peers. */
  maxConcurrentStreams: 4,
  /** Inbound manifest streams served at once to one peer. */
  maxStreamsPerPeer: 1,
  /** From stream open to the request frame. */
  requestTimeoutMs: 2_000,
  /** Whole exchange, request to final frame. */
  timeoutMs: 120_000
} as const
