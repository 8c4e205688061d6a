import { signCapabilities, type Capabilities } from '../../protocol/capabilities.js'
import { createFeedServer, type FeedServer } from '../http/server.js'
import { silentLogger } from '../logger.js'
import { createP2PNode, TOPICS } from '../p2p/index.js'
import { createScheduler } from '../scheduler/index.js'
import { createTransparencyLog, createWitness, type Witness } from '../tlog/index.js'
import type { VerifiedCheckpoint } from '../../protocol/tlog/gossip.js'
import { createIngest, type Judgement } from '../ingest/index.js'
import { hostArch, toolInfo } from '../../tool.js'
import { createBackfillSync, storeBackfillSource } from './backfill.js'
import { createBuilderRegistry } from './builders.js'
import { MessageRejectedError } from './errors.js'
import { jobsView } from './jobs.js'
import type { Daemon, DaemonComponents, DaemonInit, DaemonStats } from './types.js'
import type { StoredMessage } from '../store/types.js'
import { createReportGossip, createTriage, listReports, type ReportCheck } from '../triage/index.js'
import { splitViewLookup } from '../consensus/set-aside.js'
import { STATEMENTS_DEFAULTS } from '../p2p/statements.js'

/** A peer's statements are fetched again on a new connection only after this long. */
const STATEMENTS_REFETCH_MS = 10 * 60_000
/** Peers remembered for that, at most. */
const STATEMENTS_PEERS = 4096

/**
 * One rebuilder node: verifies and stores what peers gossip, catches up from each peer it
 * meets, builds what trusted announcers announce (one build at a time by default), signs
 * and publishes the result, and serves it all over the HTTP feed when asked.
 */
export async function createDaemon (components: DaemonComponents, init: DaemonInit): Promise<Daemon> {
  const logger = components.logger ?? silentLogger()
  const log = logger.forComponent('daemon')
  const { store, identity } = components
  const policy = components.policy
  const ingest = createIngest({ store, policy, logger, ...(components.metrics != null ? { metrics: components.metrics } : {}) }, { ...init.validator, ...(init.trustedRate != null ? { trustedRate: init.trustedRate } : {}) })
  const builders = createBuilderRegistry({ store, policy: () => policy, log })
  const gossipCounts = { accepted: 0, rejected: 0, ignored: 0 }
  let claimsSigned = 0
  let ownCapabilities: Capabilities | undefined
  let engineCaps: Awaited<ReturnType<NonNullable<DaemonComponents['rebuilder']>['capabilities']>> | undefined
  const onStored = (cb: (message: StoredMessage) => void): void => {
    ingest.addEventListener('stored', ({ detail }) => { cb(detail) })
  }
  const statementsFetched = new Map<string, number>() // peer → when its statements were last fetched
  let feed: FeedServer | undefined
  let feedUrl: string | undefined
  let running = false
  let stopping: Promise<void> | undefined
  const tlog = init.tlog !== undefined ? createTransparencyLog({ store, identity, logger }, init.tlog) : undefined
  if (tlog !== undefined) {
    onStored(() => { tlog.sync().catch((err: unknown) => { log.error({ err }, 'appending to the transparency log failed') }) })
  }
  let witness: Witness | undefined

  // Why builders disagree, from file manifests: only where this node keeps its own.
  const triage = components.manifests == null
    ? undefined
    : createTriage({ store, identity, keeper: components.manifests, ...(components.outputs != null ? { outputs: components.outputs } : {}), policy: () => policy, log: logger.forComponent('triage'), p2p: { fileManifest: async (...a) => await p2p.fileManifest(...a) } }, init.triage)
  if (triage != null) onStored(m => { if (m.kind === 'claim') triage.claimStored(m) })
  // Reports travel on their own topic, to observers as to builders.
  const reports = createReportGossip({ store, policy: () => policy, log: logger.forComponent('divergences') }, init.reports)
  triage?.onReport(r => { p2p.publish(TOPICS.divergences, Buffer.from(r.envelopeJson, 'utf8')).catch((err: unknown) => { log.debug({ err }, 'publishing a divergence report failed') }) })

  const p2p = await createP2PNode({
    logger,
    privateKey: identity.privateKey,
    // What gossip dropped over a rate limit is fetched from the peer that delivered it, soon:
    // a checkpoint by the witness (see witness.ts), anything stored by back-fill.
    onThrottled: (topic, from) => { if (topic === TOPICS.checkpoints) witness?.throttled(from); else backfill.missed(from) },
    async validate (topic, data, from) {
      let verdict: 'accept' | 'reject' | 'ignore'
      let judgement: Judgement | undefined
      let report: ReportCheck | undefined
      let checkpoint: VerifiedCheckpoint | undefined
      if (topic === TOPICS.capabilities) {
        verdict = builders.receive(data)
      } else if (topic === TOPICS.checkpoints) {
        const c = witness?.validate(data)
        verdict = c?.verdict ?? 'ignore'
        if (c?.verdict === 'accept') checkpoint = c.checkpoint
      } else if (topic === TOPICS.divergences) {
        report = await reports.check(data)
        if (report.verdict === 'reject') log.info({ reason: report.reason, keyId: report.keyId }, 'divergence report refused')
        verdict = report.verdict
      } else {
        judgement = await ingest.validate(topic, data)
        verdict = judgement.verdict
        if (judgement.throttled === true) backfill.missed(from)
      }
      if (verdict === 'accept') gossipCounts.accepted++
      else if (verdict === 'reject') gossipCounts.rejected++
      else gossipCounts.ignored++
      const value = judgement ?? report ?? checkpoint
      return value !== undefined ? { outcome: verdict, value } : verdict
    },
    async onMessage (topic, data, _from, validated) {
      if (topic === TOPICS.capabilities) return
      if (topic === TOPICS.checkpoints) {
        await witness?.receive(data, validated as VerifiedCheckpoint | undefined).catch((err: unknown) => { log.warn({ err }, 'a checkpoint message failed') })
        return
      }
      if (topic === TOPICS.divergences) {
        await reports.receive(data, validated as ReportCheck | undefined).catch((err: unknown) => { log.warn({ err }, 'storing a divergence report failed') })
        return
      }
      // The p2p layer delivers only what `validate` accepted, with the judgement it returned.
      if (validated === undefined) {
        log.warn({ topic }, 'a gossip message arrived without its judgement; dropped')
        return
      }
      try {
        await ingest.deliver(validated as Judgement, data)
      } catch (err) {
        log.warn({ err, topic }, 'storing a gossip message failed')
      }
    },
    backfillSource: storeBackfillSource(store),
    ...(tlog !== undefined
      ? {
          proofSource: async (origin: string, oldSize: number, newSize: number) => {
            if (origin !== tlog.origin) return `this node keeps the log ${tlog.origin}, not ${origin.slice(0, 120)}`
            if (oldSize > newSize || newSize > tlog.checkpointSize()) return `sizes must satisfy old <= new <= ${tlog.checkpointSize()}`
            return await tlog.consistency(oldSize, newSize)
          },
          checkpointSource: (origin: string) => witness?.newest(origin) ?? 'this node keeps no log',
          checkpointPushed: async (data: Uint8Array, from: string) => await witness?.pushed(data, from) ?? 'this node witnesses no log'
        }
      : {}),
    ...(triage != null ? { manifestSource: triage.manifestSource } : {}),
    // Capabilities and divergence reports are gossiped once, as they change; a peer that meets
    // this node later fetches them here (see fetchStatements).
    statementsSource: async () => ({
      capabilities: builders.list().sort((a, b) => Number(b.self) - Number(a.self)).map(b => Buffer.from(b.envelopeJson, 'utf8')),
      reports: (await listReports(store, {}, STATEMENTS_DEFAULTS.maxReports)).map(r => Buffer.from(r.envelopeJson, 'utf8'))
    })
  }, {
    listen: init.listen,
    bootstrap: init.bootstrap,
    mdns: init.mdns,
    maxConnections: init.maxConnections,
    gossip: init.gossip,
    ...(init.nat != null ? { nat: init.nat } : {}),
    ...(init.peerStorePath != null ? { peerStorePath: init.peerStorePath } : {})
  })

  const policyWitnessing = { witnesses: new Set(policy.witnesses?.keys.keys() ?? []), builders: new Set(policy.builderKeys.keys()) }
  if (tlog !== undefined) {
    const w = createWitness({
      logger,
      identity,
      log: tlog,
      publish: async (data) => await p2p.publish(TOPICS.checkpoints, data),
      consistencyProof: async (peer, origin, oldSize, newSize) => await p2p.consistencyProof(peer, origin, oldSize, newSize),
      checkpoint: async (peer, origin) => await p2p.checkpoint(peer, origin),
      // Own checkpoints go to the sampled witnesses, whose answers carry their cosignatures.
      push: async (peer, message) => await p2p.pushCheckpoint(peer, message),
      connected: () => p2p.connectedPeers(),
      policy: () => policyWitnessing
    }, { path: init.tlog?.witnessPath ?? `${init.tlog?.path ?? ''}-witness`, ...init.tlog?.witness })
    tlog.onCheckpoint(note => { if (running) w.publishOwn(note).catch((err: unknown) => { log.debug({ err }, 'publishing a checkpoint failed') }) })
    witness = w
  }

  const backfill = createBackfillSync({ store, p2p, log, accept: async (items) => await ingest.acceptItems(items) }, init.backfill)

  const scheduler = createScheduler({
    logger,
    store,
    ingest,
    rebuilder: components.rebuilder,
    identity,
    capabilities: () => engineCaps,
    async publishClaim (envelopeJson) {
      await p2p.publish(TOPICS.claims, Buffer.from(envelopeJson, 'utf8'))
    },
    onClaim (claim) {
      claimsSigned++
      const seconds = (Date.parse(claim.finishedOn) - Date.parse(claim.startedOn)) / 1000
      components.metrics?.buildFinished(claim.failure?.class ?? 'success', Number.isFinite(seconds) ? seconds : 0)
    }
  }, {
    concurrency: init.concurrency,
    maxAttempts: init.maxAttempts,
    backoffMs: init.backoffMs,
    ...(init.maxAnnouncementAgeMs != null ? { maxAnnouncementAgeMs: init.maxAnnouncementAgeMs } : {}),
    ...(init.progressIntervalMs != null ? { progressIntervalMs: init.progressIntervalMs } : {})
  })
  // What arrives announced is queued here; the scheduler keeps its queue calls in order.
  ingest.addEventListener('stored', ({ detail }) => {
    if (detail.kind === 'announcement') scheduler.enqueue(detail).catch((err: unknown) => { log.warn({ err, id: detail.id }, 'queueing an announced release failed') })
  })
  components.metrics?.observeJobs(async () => ({ queued: (await store.listJobs('queued')).length, running: scheduler.running().length }))

  async function publishCapabilities (): Promise<void> {
    if (ownCapabilities == null) return
    ownCapabilities = { ...ownCapabilities, issuedAt: new Date().toISOString() }
    const envelopeJson = JSON.stringify(signCapabilities(ownCapabilities, identity))
    builders.setOwn(identity.keyId, ownCapabilities, envelopeJson)
    try {
      await p2p.publish(TOPICS.capabilities, Buffer.from(envelopeJson, 'utf8'))
    } catch (err) {
      log.debug({ err }, 'publishing capabilities failed')
    }
  }

  async function probeCapabilities (): Promise<Capabilities> {
    const tool = toolInfo()
    const observer: Capabilities = { arch: hostArch(), platforms: [], nvidia: false, builds: false, tool, issuedAt: new Date().toISOString() }
    if (components.rebuilder == null) return observer
    try {
      engineCaps = await components.rebuilder.capabilities()
    } catch (err) {
      log.error({ err }, 'the build engine is not ready: this node runs as an observer (it builds nothing)')
      return observer
    }
    const env = engineCaps.environment
    return {
      arch: env.arch,
      platforms: engineCaps.platforms,
      nvidia: engineCaps.nvidia,
      builds: true,
      // The capabilities statement carries the engine's version, not its id (claims do).
      engine: { name: env.engine.name, version: env.engine.version, ...(env.engine.apiVersion != null ? { apiVersion: env.engine.apiVersion } : {}) },
      buildx: env.buildx,
      buildkit: env.buildkit,
      tool,
      issuedAt: new Date().toISOString()
    }
  }

  /**
   * What gossip no longer repeats, fetched from a peer met: its statements and reports, checked
   * as gossip is (a refused item costs the peer as an invalid message would).
   */
  async function fetchStatements (peerId: string): Promise<void> {
    const now = Date.now()
    const last = statementsFetched.get(peerId)
    if (last !== undefined && now - last < STATEMENTS_REFETCH_MS) return
    if (last === undefined && statementsFetched.size >= STATEMENTS_PEERS) statementsFetched.delete(statementsFetched.keys().next().value as string)
    statementsFetched.set(peerId, now)
    let got
    try {
      got = await p2p.statements(peerId)
    } catch (err) {
      log.debug({ peer: peerId, err: (err as Error).message }, 'fetching a peer\'s statements failed')
      return
    }
    let invalid = 0
    for (const data of got.capabilities) if (builders.receive(data) === 'reject') invalid++
    for (const data of got.reports) {
      const check = await reports.check(data)
      if (check.verdict === 'reject') invalid++
      if (check.verdict === 'accept') await reports.receive(data, check).catch((err: unknown) => { log.warn({ err }, 'storing a divergence report failed') })
    }
    if (invalid > 0) p2p.penalize(peerId, invalid)
  }

  function onPeerConnected (peerId: string): void {
    components.metrics?.setPeers(p2p.connectedPeers().length)
    if (!running) return
    void backfill.syncFrom(peerId)
    // Nothing is re-announced on a timer: what a new peer holds, and its log's newest checkpoint, is fetched.
    void fetchStatements(peerId)
    witness?.met(peerId)
  }

  p2p.onPeer((event, peerId) => {
    if (event === 'connect') onPeerConnected(peerId)
    else components.metrics?.setPeers(p2p.connectedPeers().length)
  })

  const daemon: Daemon = {
    peerId: p2p.peerId,
    keyId: identity.keyId,
    store,
    p2p,
    scheduler,
    policy: () => policy,
    multiaddrs: () => p2p.multiaddrs(),

    async start () {
      if (running) return
      if (policy.builders.length === 0 && policy.announcers.length === 0) {
        log.warn('no trust policy configured: no builder or announcer is trusted, nothing is built and every verdict stays pending')
      }
      await tlog?.start()
      await witness?.start()
      ownCapabilities = await probeCapabilities()
      if (components.rebuilder?.sweep != null && ownCapabilities.builds) {
        // Never a reason not to start: what is left stays for the next sweep.
        const swept = await components.rebuilder.sweep().catch((err: unknown) => { log.warn({ err }, 'could not clear what an earlier run left behind'); return { workspaces: 0, locks: 0 } })
        if (swept.workspaces + swept.locks > 0) log.info(swept, 'removed what an earlier run killed mid-build left behind')
      }
      await builders.load()
      await p2p.start()
      running = true
      await scheduler.start()
      // Once, as it changed (a new start); peers that miss it fetch it when they meet this node.
      await publishCapabilities()
      if (init.http != null) {
        feed = createFeedServer({
          logger,
          store,
          ingest,
          policy,
          metrics: components.metrics,
          builders: () => builders.list(),
          jobs: async ({ recent }) => await jobsView({ store, scheduler }, { recent }),
          peers: () => {
            const { reachability, relayRefused, relayedBytes } = p2p.stats()
            return { peerId: p2p.peerId, ...reachability, relayRefused, relayedBytes, peers: p2p.peerList() }
          },
          host: () => scheduler.health(),
          catchUp: () => { const b = backfill.stats(); return { behind: b.behind, perSecond: b.perSecond, etaSeconds: b.etaSeconds } },
          ...(tlog !== undefined ? { tlog: { log: tlog, splitViews: async () => await witness?.splitViews() ?? [], unresponsive: () => witness?.unresponsive() ?? [], behind: () => witness?.behind() ?? [], underWitnessed: () => witness?.underWitnessed() ?? [] } } : {}),
          // A builder whose log this node proved split is not counted in its own verdicts either.
          ...(witness !== undefined ? { setAside: splitViewLookup({ splitViews: witness.splitViews, builderKeys: policy.builderKeys }) } : {})
        }, init.http)
        feedUrl = (await feed.start()).url
        log.info({ url: feedUrl }, 'HTTP feed listening')
      }
      backfill.start()
      for (const peer of p2p.connectedPeers()) {
        void backfill.syncFrom(peer)
        void fetchStatements(peer)
        witness?.met(peer)
      }
      // `join` prints identity, addresses and platforms once, as its result.
      log.debug({ peerId: p2p.peerId, keyId: identity.keyId, addrs: p2p.multiaddrs(), builds: ownCapabilities.platforms }, 'node started')
    },

    async stop () {
      if (stopping != null) return await stopping
      stopping = (async () => {
        running = false
        backfill.stop()
        triage?.stop()
        await scheduler.stop()
        if (feed != null) await feed.stop().catch((err: unknown) => { log.warn({ err }, 'stopping the HTTP feed failed') })
        await p2p.stop().catch((err: unknown) => { log.warn({ err }, 'stopping p2p failed') })
        await builders.save().catch((err: unknown) => { log.warn({ err }, 'saving the builder table failed') })
        await tlog?.stop().catch((err: unknown) => { log.warn({ err }, 'closing the transparency log failed') })
        await witness?.stop().catch((err: unknown) => { log.warn({ err }, 'closing the witness failed') })
        await store.close()
        log.info('node stopped')
      })()
      return await stopping
    },

    builders: () => builders.list(),
    capabilities: () => ownCapabilities,

    async announce (envelope) {
      const text = typeof envelope === 'string' ? envelope : JSON.stringify(envelope)
      const data = Buffer.from(text, 'utf8')
      const { outcome, judgement: r } = await ingest.accept(TOPICS.announcements, data)
      if (r.verdict === 'reject' || r.refused === true) throw new MessageRejectedError(r.reason ?? 'invalid')
      if (r.message == null || r.message.kind !== 'announcement') throw new MessageRejectedError('not an announcement')
      const { recipients } = await p2p.publish(TOPICS.announcements, data)
      return { id: r.message.id, stored: outcome === 'stored', recipients }
    },

    syncFrom: async (peerId) => await backfill.syncNow(peerId),
    httpUrl: () => feedUrl,
    stats: (): DaemonStats => ({
      peers: p2p.connectedPeers().length,
      reachability: p2p.stats().reachability,
      gossip: { ...gossipCounts },
      backfill: backfill.stats(),
      claimsSigned,
      ...(tlog !== undefined && witness !== undefined ? { tlog: { size: tlog.size(), checkpointSize: tlog.checkpointSize(), republished: tlog.republished(), witness: witness.stats() } } : {})
    }),
    tlog,
    ingest,
    onStored
  }
  return daemon
}
