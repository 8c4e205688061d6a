import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { VerifiedCheckpoint } from '../../protocol/tlog/gossip.js'
import { splitViewLookup } from '../consensus/set-aside.js'
import type { Follower } from '../follow/index.js'
import type { FeedServerComponents } from '../http/server.js'
import type { ComponentLogger, Logger } from '../logger.js'
import { TOPICS, type CheckpointPushTarget, type CheckpointSource, type P2PNode, type ProofSource, type TopicHandler } from '../p2p/index.js'
import type { Store } from '../store/types.js'
import { checkpointsTopic, createHttpWitness, createNodeNetworkLog, createTransparencyLog, createWitness, createWitnessPusher, witnessedLogKeys, type TransparencyLog, type Witness } from '../tlog/index.js'
import type { Service } from './services.js'
import type { DaemonInit, DaemonStats } from './types.js'

/** The node's transparency log and its witness of peers' logs, as the daemon wires them. */
export interface NodeLog {
  tlog: TransparencyLog
  witness: Witness
  /** The log, then the witness. */
  services: Service[]
  /** Appends every stored message; its cursor is the log's size, written with its entries. */
  follower: Follower
  topic: TopicHandler<VerifiedCheckpoint>
  /** What the p2p node serves of it: consistency proofs, the newest checkpoints, and cosignatures of checkpoints pushed to it. */
  sources: { proofSource: ProofSource, checkpointSource: CheckpointSource, checkpointPushed: CheckpointPushTarget }
  /** What the HTTP feed serves of it: the log, split views, the C2SP witness endpoint, the network log. */
  feed: Pick<FeedServerComponents, 'tlog' | 'setAside' | 'witness' | 'networkLog'>
  stats: () => NonNullable<DaemonStats['tlog']>
}

export interface NodeLogComponents {
  store: Store
  identity: SigningIdentity
  policy: TrustPolicy
  logger: ComponentLogger
  log: Logger
  /** The p2p node, created after the log (it serves the log's proofs). */
  p2p: () => Pick<P2PNode, 'publish' | 'consistencyProof' | 'checkpoint' | 'connectedPeers' | 'pushCheckpoint'>
  /** Own checkpoints are published only while the node runs. */
  running: () => boolean
}

export function createNodeLog (components: NodeLogComponents, init: NonNullable<DaemonInit['tlog']>): NodeLog {
  const { store, identity, logger, log, p2p } = components
  const tlog = createTransparencyLog({ store, identity, logger }, init)
  // Whom the policy names as witnesses, of which builders' logs (the witness adds them to each sample).
  const policyWitnessing = { witnesses: new Set(components.policy.witnesses?.keys.keys() ?? []), builders: new Set(components.policy.builderKeys.keys()) }
  const witness = createWitness({
    logger,
    // The network log (below) enters every log head this witness sees.
    seen: (c) => { networkLog?.log.noteCheckpoint(c.checkpoint.origin, c.checkpoint.size, c.checkpoint.rootHash) },
    identity,
    log: tlog,
    publish: async (data) => await p2p().publish(TOPICS.checkpoints, data),
    consistencyProof: async (peer, origin, oldSize, newSize) => await p2p().consistencyProof(peer, origin, oldSize, newSize),
    checkpoint: async (peer, origin) => await p2p().checkpoint(peer, origin),
    // Own checkpoints go to the sampled witnesses, whose answers carry their cosignatures.
    push: async (peer, message) => await p2p().pushCheckpoint(peer, message),
    connected: () => p2p().connectedPeers(),
    policy: () => policyWitnessing
  }, { path: init.witnessPath ?? `${init.path}-witness`, ...init.witness })
  tlog.onCheckpoint(note => { if (components.running()) witness.publishOwn(note).catch((err: unknown) => { log.debug({ err }, 'publishing a checkpoint failed') }) })
  // C2SP tlog-witness over HTTP: witnessing the logs the policy or configuration names, and
  // pushing this node's own checkpoints to configured witnesses.
  const httpWitness = createHttpWitness({ logger, witness, trustedKeys: witnessedLogKeys(components.policy.builderKeys, init.witnessLogs ?? [], identity.keyId) })
  const pusher = (init.witnessUrls ?? []).length > 0
    ? createWitnessPusher({ logger, log: tlog }, { witnesses: init.witnessUrls ?? [], ...(init.witnessPushIntervalMs !== undefined ? { minIntervalMs: init.witnessPushIntervalMs } : {}) })
    : undefined
  // A network log the public can witness (`join --network-log`): log heads seen and verdicts.
  const networkLog = init.networkLog !== undefined
    ? createNodeNetworkLog({ logger, identity, store, policy: components.policy, tlog }, { path: init.networkLog.path ?? `${init.path}-network`, origin: init.networkLog.origin, witnessUrls: init.witnessUrls ?? [], ...(init.networkLog.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: init.networkLog.checkpointIntervalMs } : {}) })
    : undefined
  return {
    tlog,
    witness,
    services: [
      { name: 'transparency log', start: tlog.start, stop: tlog.stop },
      { name: 'witness', start: witness.start, stop: witness.stop },
      ...pusher != null ? [{ name: 'witness pusher', start: () => { pusher.start() }, stop: async () => { await pusher.stop() } }] : [],
      ...networkLog != null ? [{ name: 'network log', start: networkLog.start, stop: networkLog.stop }] : []
    ],
    follower: {
      name: 'tlog',
      // The log reads the store itself, in synced batches that hold its cursor.
      apply: async () => { await tlog.sync() },
      cursor: () => tlog.size()
    },
    topic: checkpointsTopic({ witness, log }),
    sources: {
      async proofSource (origin, oldSize, newSize) {
        if (origin !== tlog.origin) return `this node keeps the log ${tlog.origin}, not ${origin.slice(0, 120)}`
        if (oldSize > newSize || newSize > tlog.checkpointSize()) return `sizes must satisfy old <= new <= ${tlog.checkpointSize()}`
        return await tlog.consistency(oldSize, newSize)
      },
      checkpointSource: (origin) => witness.newest(origin) ?? 'this node keeps no log',
      checkpointPushed: async (data, from) => await witness.pushed(data, from)
    },
    feed: {
      tlog: { log: tlog, splitViews: async () => await witness.splitViews(), unresponsive: () => witness.unresponsive(), behind: () => witness.behind(), underWitnessed: () => witness.underWitnessed() },
      // A builder whose log this node proved split is not counted in its own verdicts either.
      setAside: splitViewLookup({ splitViews: witness.splitViews, builderKeys: components.policy.builderKeys }),
      witness: httpWitness,
      ...(networkLog != null ? { networkLog: networkLog.log } : {})
    },
    stats: () => ({ size: tlog.size(), checkpointSize: tlog.checkpointSize(), republished: tlog.republished(), witness: witness.stats(), ...(pusher != null ? { pushed: pusher.status() } : {}), ...(networkLog != null ? { networkLog: networkLog.status() } : {}) })
  }
}
