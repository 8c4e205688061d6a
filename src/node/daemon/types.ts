import type { Capabilities } from '../../protocol/capabilities.js'
import type { Envelope } from '../../protocol/dsse.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Capabilities as EngineCapabilities } from '../rebuilder/index.js'
import type { ComponentLogger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { GossipInit, NatInit, P2PNode, Reachability } from '../p2p/index.js'
import type { Scheduler, SchedulerRebuilder } from '../scheduler/index.js'
import type { Store, StoredMessage } from '../store/types.js'
import type { TransparencyLog } from '../tlog/types.js'
import type { WitnessInit, WitnessStats } from '../tlog/witness.js'
import type { HttpWitnessTarget, WitnessPushStatus } from '../tlog/witness-push.js'
import type { BackfillStats, BackfillSyncInit } from './backfill.js'
import type { BuilderInfo } from './builders.js'
import type { Ingest, IngestInit } from '../ingest/index.js'
import type { Follower } from '../follow/index.js'
import type { WorkInit } from '../work/index.js'
import type { ManifestKeeper, OutputKeeper, ReportGossipInit, DivergenceServiceInit } from '../divergence/index.js'

/** What the daemon needs of a rebuild engine (the build engine's `Rebuilder` satisfies it). */
export interface DaemonRebuilder extends SchedulerRebuilder {
  capabilities: () => Promise<EngineCapabilities>
  /** Clears what rebuilds of a process killed mid-build left behind (Rebuilder.sweep). */
  sweep?: () => Promise<{ workspaces: number, locks: number }>
}

export interface DaemonComponents {
  identity: SigningIdentity
  store: Store
  policy: TrustPolicy
  /** Absent: an observer node that verifies, stores and relays, and builds nothing. */
  rebuilder?: DaemonRebuilder
  metrics?: Metrics
  /** Bound to this node (nodeLogger); silent without one. */
  logger?: ComponentLogger
  /** File manifests of this node's rebuilds: served to peers, and compared with dissenting builders' (docs/network.md). */
  manifests?: ManifestKeeper
  /** OCI outputs of this node's recent rebuilds: their bytes name causes that a manifest alone cannot. */
  outputs?: OutputKeeper
}

export interface DaemonInit {
  listen: string[]
  bootstrap?: string[]
  mdns?: boolean
  maxConnections?: number
  /** Port mapping, relays, hole punching, the DHT (docs/volunteers.md). */
  nat?: NatInit
  /** Keep the peers seen in this directory across restarts. */
  peerStorePath?: string
  /** Builds at once. */
  concurrency?: number
  maxAttempts?: number
  /** First retry delay after an infrastructure error. */
  backoffMs?: number
  /** Serve the HTTP feed here. */
  http?: { host: string, port: number }
  gossip?: GossipInit
  backfill?: BackfillSyncInit
  /** Limits on keys the policy does not trust (see `IngestInit`). */
  validator?: Pick<IngestInit, 'untrustedPerMinute' | 'untrustedPerTarget'>
  /**
   * Gossip messages per minute accepted from one trusted key (a policy builder's claims, an
   * announcer's announcements), and the burst; beyond it they are ignored (back-fill brings
   * them later). Untrusted keys have their own, lower limit (`validator`).
   */
  trustedRate?: { perMinute: number, burst: number }
  /** Queue only announcements made at most this long ago (0 or absent: no limit). */
  maxAnnouncementAgeMs?: number
  /** How often a running build's progress is logged. */
  progressIntervalMs?: number
  /** Keep a transparency log of every stored message in this directory (docs/transparency.md). */
  tlog?: {
    path: string
    checkpointIntervalMs?: number
    republishIntervalMs?: number
    /** Witness state; beside the log when absent. */
    witnessPath?: string
    /** When a witness behind on a log fetches its newest checkpoint again. */
    witness?: Pick<WitnessInit, 'refetchMs' | 'retryMs' | 'maxRetryMs' | 'witnesses' | 'epochMs' | 'witnessGraceMs' | 'pushBudget'>
    /** Ed25519 note verifier keys of further logs this node witnesses over HTTP (`POST /tlog/add-checkpoint`), besides its policy builders' logs. */
    witnessLogs?: string[]
    /** C2SP tlog-witness HTTP witnesses this node pushes its own log's checkpoints to (`join --witness-url`). */
    witnessUrls?: HttpWitnessTarget[]
    /** Least time between two pushes to one HTTP witness (ms, default 60 s). */
    witnessPushIntervalMs?: number
    /** Run a network log (`join --network-log ORIGIN`): served under /network-log/, pushed to `witnessUrls`. */
    networkLog?: { origin: string, path?: string, checkpointIntervalMs?: number }
  }
  divergence?: DivergenceServiceInit
  /** Checks on divergence reports received over gossip. */
  reports?: ReportGossipInit
  /** Shared work: notices, waits, and `buildAll` (`join --build-all`) to build every target as before. */
  work?: WorkInit
}

export interface DaemonStats {
  peers: number
  /** Whether other nodes reach this one directly, through a port mapping or only through relays. */
  reachability: Reachability
  gossip: { accepted: number, rejected: number, ignored: number }
  backfill: BackfillStats
  claimsSigned: number
  /** Each derived view's lag: messages stored that it has not applied yet (src/node/follow). */
  followers: Record<string, number>
  /** Entries in the transparency log and the size of its latest checkpoint. */
  tlog?: { size: number, checkpointSize: number, /** Idle re-announcements of the latest checkpoint. */ republished: number, witness: WitnessStats, /** HTTP witnesses this node pushes its checkpoints to. */ pushed?: WitnessPushStatus[], /** The network log, when the node runs one. */ networkLog?: { origin: string, vkey: string, size: number, pushed: WitnessPushStatus[] } }
}

export interface Daemon {
  readonly peerId: string
  readonly keyId: string
  readonly store: Store
  readonly p2p: P2PNode
  readonly scheduler: Scheduler
  policy: () => TrustPolicy
  multiaddrs: () => string[]
  start: () => Promise<void>
  /** Aborts a running build (requeued for next start), stops p2p and HTTP, closes the store. */
  stop: () => Promise<void>
  /** Latest capabilities per node key, this node first (for `/api/v1/builders`). */
  builders: () => BuilderInfo[]
  /** This node's own statement; undefined before start. */
  capabilities: () => Capabilities | undefined
  /** Verifies, stores and publishes a signed announcement (as if it arrived over gossip). */
  announce: (envelope: Envelope | string) => Promise<{ id: string, stored: boolean, recipients: number }>
  /** Catches up from one connected peer now. */
  syncFrom: (peerId: string) => Promise<{ stored: number, rejected: number }>
  /** The HTTP feed's URL when it runs. */
  httpUrl: () => string | undefined
  stats: () => DaemonStats
  /** The transparency log, when the node keeps one. */
  readonly tlog?: TransparencyLog
  /** Where every message enters the node; its `stored` events say what was stored. */
  readonly ingest: Ingest
  /** Called for each message this node stores (gossip, back-fill, own claims). */
  onStored: (cb: (message: StoredMessage) => void) => void
  /**
   * Feeds a view started beside the node (`join --attest`) from its own durable cursor, as the
   * node's own followers are fed; its lag shows in `stats().followers` and the metrics.
   */
  follow: (follower: Follower) => Promise<void>
}
