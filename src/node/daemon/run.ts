import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { createRebuilder } from '../rebuilder/index.js'
import type { NodeConfig } from '../config/types.js'
import { loadOrCreateIdentity, readIdentity } from '../identity-files.js'
import type { ComponentLogger } from '../logger.js'
import { makeDir } from '../make-dir.js'
import { createMetrics } from '../metrics.js'
import { createStore, StoreLockedError } from '../store/index.js'
import { createManifestKeeper, createOutputKeeper, keepingManifests } from '../divergence/index.js'
import { CONTROL_SOCKET, createControlServer, type ControlServer } from './control.js'
import { createDaemon } from './daemon.js'
import { nodeLogger } from './node-logger.js'
import { loadPolicyFile, trustNobodyPolicy } from './policy.js'
import type { Daemon } from './types.js'
import { createTagWatcher, type TagWatcher } from './watcher.js'

export interface RunningNode {
  daemon: Daemon
  watcher?: TagWatcher
  /** The node's logger, bound to its identity: for what the command adds (join --attest). */
  logger: ComponentLogger
  /** Stops the watcher, then the daemon (which aborts a running build and closes the store). */
  stop: () => Promise<void>
}

/** Everything `join` starts, from resolved settings: identity, policy, store, engine, daemon, watcher. */
export async function startNode (components: { logger: ComponentLogger }, config: NodeConfig, opts: { build?: boolean } = {}): Promise<RunningNode> {
  // Made here, not by level or libp2p, so that a bad path is one clear error.
  await makeDir(config.dataDir, 0o750)
  const identity = await loadOrCreateIdentity(config.keyDir, components)
  const policy = config.policyFile != null ? await loadPolicyFile(config.policyFile) : trustNobodyPolicy()
  const logger = nodeLogger(components.logger, identity, policy)
  const log = logger.forComponent('node')
  if (config.policyFile != null) {
    log.info({ policy: config.policyFile, builders: policy.builders.length, announcers: policy.announcers.length, threshold: policy.threshold }, 'trust policy loaded')
  } else {
    log.warn({ hint: join(config.dataDir, 'policy.json') }, 'no trust policy: using the built-in policy that trusts nobody; put one at the hint path or pass --policy FILE')
  }
  const announceIdentity = config.watch != null ? await readIdentity(config.watch.announceKeyDir, { logger }) : undefined
  if (announceIdentity != null && !policy.announcerKeys.has(announceIdentity.keyId)) {
    log.warn({ keyId: announceIdentity.keyId }, 'the announce key is not an announcer in this node\'s policy: its announcements will be refused')
  }
  const store = await createStore({ logger }, { path: join(config.dataDir, 'store') }).catch((err: unknown) => {
    if (err instanceof StoreLockedError) throw new StoreLockedError(err.path, `one node per data directory: stop the node running on ${config.dataDir}, or pass another --data-dir`)
    throw err
  })
  let daemon: Daemon | undefined
  let control: ControlServer | undefined
  try {
    const manifests = createManifestKeeper({ log: logger.forComponent('manifests') }, { dir: join(config.dataDir, 'manifests'), ...config.keepManifests })
    const engine = opts.build === false ? undefined : createRebuilder({ logger }, { workDir: join(config.dataDir, 'work'), timeoutMs: config.buildTimeoutMs })
    // Bounds that shrank since the last run apply before anything new is kept.
    const outputs = engine != null && config.keepOutputs.maxCount > 0 ? createOutputKeeper({ log: logger.forComponent('outputs') }, { dir: join(config.dataDir, 'outputs'), ...config.keepOutputs }) : undefined
    await outputs?.prune()
    if (config.keepOutputs.maxCount === 0) await rm(join(config.dataDir, 'outputs'), { recursive: true, force: true })
    const rebuilder = engine != null ? keepingManifests(engine, manifests, logger.forComponent('manifests'), outputs) : undefined
    daemon = await createDaemon({ identity, store, policy, logger, metrics: createMetrics(), manifests, ...(rebuilder != null ? { rebuilder } : {}), ...(outputs != null ? { outputs } : {}) }, {
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      nat: config.nat,
      peerStorePath: join(config.dataDir, 'peers'),
      concurrency: config.concurrency,
      work: { buildAll: config.buildAll },
      tlog: { path: join(config.dataDir, 'tlog'), witnessPath: join(config.dataDir, 'witness'), witness: { pushBudget: { floorMs: config.witnessRoundMs } }, ...(config.tlogWitness !== undefined ? { witnessUrls: config.tlogWitness.urls, witnessLogs: config.tlogWitness.logs } : {}), ...(config.networkLog !== undefined ? { networkLog: { origin: config.networkLog, path: join(config.dataDir, 'network-log') } } : {}) },
      maxAnnouncementAgeMs: config.maxReleaseAgeDays * 86_400_000,
      ...(config.http != null ? { http: config.http } : {})
    })
    await daemon.start()
    // `jobs retry` reaches the running node here.
    control = createControlServer({ scheduler: daemon.scheduler, logger }, { path: join(config.dataDir, CONTROL_SOCKET) })
    await control.start()
    let watcher: TagWatcher | undefined
    if (config.watch != null && announceIdentity != null) {
      watcher = createTagWatcher({ daemon, store, identity: announceIdentity, logger }, config.watch)
      await watcher.start()
    }
    const started = daemon
    const controlling = control
    return {
      daemon: started,
      logger,
      ...(watcher != null ? { watcher } : {}),
      async stop () {
        await watcher?.stop()
        await controlling.stop()
        await started.stop()
      }
    }
  } catch (err) {
    // Half-started: release the ports and the store lock before reporting.
    await control?.stop().catch(() => {})
    if (daemon != null) await daemon.stop().catch(() => {})
    else await store.close().catch(() => {})
    throw err
  }
}
