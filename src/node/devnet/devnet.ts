import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, type SigningIdentity } from '../../protocol/keys.js'
import { signAnnouncement } from '../../protocol/messages.js'
import { parsePolicy, type TrustPolicy } from '../../protocol/policy.js'
import { composePolicy } from '../daemon/policy.js'
import type { TargetVerdict } from '../../protocol/quorum.js'
import { judge, judgedClaims } from '../consensus/evaluate.js'
import type { VerdictStatus } from '../../protocol/types.js'
import { createRebuilder } from '../rebuilder/index.js'
import { silentLogger, type LoggerComponents } from '../logger.js'
import { TOPICS } from '../p2p/index.js'
import { createStore } from '../store/index.js'
import { createLocalEngine, type LocalEngine } from '../engines/index.js'
import { prepareAnnouncement } from '../daemon/announce.js'
import { createDaemon } from '../daemon/daemon.js'
import { createFixtureProject, type FixtureProject } from './fixture-project.js'
import { nodeLogger } from '../daemon/node-logger.js'
import type { Daemon } from '../daemon/types.js'

export interface DevnetInit {
  /** Rebuilder nodes; all are trusted builders with distinct operators. */
  nodes?: number
  /**
   * Every node builds on this machine's running engine (k = 1: one engine is one vote) instead of
   * on a Docker engine of its own (a separate dockerd per node, k = 2; needs root).
   */
  oneEngine?: boolean
  /** The dockerd binary the nodes' engines run; found on PATH when not given. */
  dockerd?: string
  /** Stops the run (Ctrl-C): nodes and engines are stopped as after a finished one. */
  signal?: AbortSignal
  /** Keep the temporary directory (stores, keys, fixture project) for inspection. */
  keep?: boolean
  /** Whole run, from start to consensus. */
  timeoutMs?: number
  /** Progress lines for a human. */
  onProgress?: (line: string) => void
  /**
   * Path of a static busybox: the fixture release then writes the build time and random
   * bytes into its image, and the devnet must find it unreproducible.
   */
  nondeterministicWith?: string
}

export interface DevnetNodeView {
  peerId: string
  keyId: string
  /** `docker info` ID of the engine the node built on. */
  engineId?: string
  /** The bridge of the node's own engine (removed when the devnet stops); absent with `oneEngine`. */
  bridge?: string
  /** The node's verdicts, computed over its own store. */
  verdicts: Array<{ target: string, status: VerdictStatus, digest?: string, agreeing: number }>
}

export interface DevnetResult {
  repository: string
  tag: string
  commit: string
  threshold: number
  /** `own`: a dockerd per node; `one`: all nodes on the machine's running engine. */
  engines: 'own' | 'one'
  /** Verdicts of the first node (every node's are in `nodes`). */
  verdicts: TargetVerdict[]
  nodes: DevnetNodeView[]
  /** Every node sees every target reproducible, with the same digest. */
  reproducible: boolean
  /** Every node reached a verdict other than pending before the timeout. */
  settled: boolean
  dir?: string
  seconds: number
}

/**
 * The quorum counts one engine as one witness (docs/consensus.md, "One vote per engine"). On
 * engines of their own, nodes are separate votes: k = 2 (k = n below two nodes). On the
 * machine's one engine they are one vote: k = 1; the nodes still build one after the other, so
 * each claim is a real rebuild. Any two claims that differ make the target unreproducible
 * (allowedDissent 0).
 */
export function devnetThreshold (nodes: number, ownEngines: boolean): number {
  return ownEngines ? Math.min(2, nodes) : 1
}

function devnetPolicyJson (builders: SigningIdentity[], announcer: SigningIdentity, threshold: number): Record<string, unknown> {
  return composePolicy(
    builders.map((b, i) => ({ name: `node-${i + 1}`, operator: `operator-${i + 1}`, publicKeyPem: b.publicKeyPem })),
    [{ name: 'devnet-announcer', publicKeyPem: announcer.publicKeyPem }],
    { threshold, minOperators: threshold })
}

async function until (check: () => Promise<boolean> | boolean, deadline: number, signal?: AbortSignal): Promise<boolean> {
  while (!await check()) {
    signal?.throwIfAborted()
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return true
}

/**
 * A whole network on one machine: N nodes on 127.0.0.1 (random ports, each bootstrapping to every
 * earlier one, so that every node can reach every other's log as a witness), each on a Docker
 * engine of its own unless `oneEngine`,
 * a trust policy of their keys (distinct operators; k from devnetThreshold), a fixture release announced by a
 * devnet announcer, rebuilt by every node through the real engine, and the consensus each
 * node computes over its own store.
 */
export async function runDevnet (init: DevnetInit = {}, components: LoggerComponents = {}): Promise<DevnetResult> {
  const root = components.logger ?? silentLogger()
  const log = root.forComponent('devnet')
  const n = Math.max(1, Math.floor(init.nodes ?? 3))
  const started = Date.now()
  const deadline = started + (init.timeoutMs ?? 10 * 60_000)
  const say = init.onProgress ?? (() => {})
  const dir = await mkdtemp(join(tmpdir(), 'neko-devnet-'))
  const daemons: Daemon[] = []
  const engines: LocalEngine[] = []
  const own = init.oneEngine !== true
  try {
    const project: FixtureProject = await createFixtureProject({ dir: join(dir, 'project'), ...(init.nondeterministicWith != null ? { nondeterministicWith: init.nondeterministicWith } : {}) })
    say(`fixture release ${project.tag} at ${project.repository} (commit ${project.commit.slice(0, 12)})`)
    const ids = Array.from({ length: n }, () => generateIdentity())
    const announcer = generateIdentity()
    const policyJson = devnetPolicyJson(ids, announcer, devnetThreshold(n, own))
    const policy: TrustPolicy = parsePolicy(policyJson)
    // Kept with --keep, so the stores can be queried afterwards (`status --data-dir node-1 --policy trust.json`).
    await writeFile(join(dir, 'trust.json'), JSON.stringify(policyJson, null, 2) + '\n')

    if (own) {
      // Bridge names are interface names (15 bytes at most): a random stem keeps side-by-side devnets apart.
      const stem = `nkd-${randomBytes(3).toString('hex')}`
      for (let i = 0; i < n; i++) engines.push(createLocalEngine({ logger: root }, { name: `${stem}-${i + 1}`, dir: join(dir, `engine-${i + 1}`), ...(init.dockerd != null ? { dockerd: init.dockerd } : {}) }))
      say(`starting ${n} Docker engines (a dockerd per node, bridges ${stem}-1..${n})`)
      // All are started before any failure is thrown, so that `finally` stops every one that came up.
      const started = await Promise.allSettled(engines.map(async e => { await e.start() }))
      const failed = started.find(r => r.status === 'rejected')
      if (failed != null) throw failed.reason
      engines.forEach((e, i) => { say(`engine ${i + 1} up: ${e.dockerHost} (engine id ${e.engineId ?? '?'})`) })
    }
    init.signal?.throwIfAborted()

    // Fail early and clearly when there is no engine to rebuild with.
    const probe = createRebuilder({ logger: root }, { workDir: join(dir, 'probe'), ...(own ? { dockerHost: engines[0]!.dockerHost } : {}) })
    const engine = await probe.capabilities()
    const native = engine.platforms.find(p => !p.emulated)?.platform ?? 'linux/amd64'

    for (let i = 0; i < n; i++) {
      const nodeDir = join(dir, `node-${i + 1}`)
      // Each node's records carry its name (node-1, …) and peer id: one stream, three nodes.
      const logger = nodeLogger(root, ids[i]!, policy)
      const store = await createStore({ logger }, { path: join(nodeDir, 'store') })
      const rebuilder = createRebuilder({ logger }, { workDir: join(nodeDir, 'work'), timeoutMs: Math.max(60_000, deadline - Date.now()), ...(own ? { dockerHost: engines[i]!.dockerHost } : {}) })
      const daemon = await createDaemon({ identity: ids[i]!, store, policy, rebuilder, logger }, {
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap: daemons.map(d => d.multiaddrs()[0]!),
        mdns: false,
        gossip: { heartbeatIntervalMs: 200 },
        backoffMs: 1000,
        tlog: { path: join(nodeDir, 'tlog') }
      })
      await daemon.start()
      daemons.push(daemon)
      say(`node ${i + 1} up: ${daemon.multiaddrs()[0]}`)
    }
    const meshed = await until(() => daemons.every(d => (d.p2p.stats().mesh[TOPICS.announcements] ?? 0) >= Math.min(1, n - 1) && (d.p2p.stats().mesh[TOPICS.claims] ?? 0) >= Math.min(1, n - 1)), Math.min(deadline, Date.now() + 30_000), init.signal)
    if (!meshed) log.warn('gossip meshes did not form in time; relying on back-fill')

    const announcement = await prepareAnnouncement({ repository: project.repository, tag: project.tag, platforms: [native] })
    const sent = await daemons[0]!.announce(signAnnouncement(announcement, announcer))
    say(`announced ${project.tag}: ${announcement.targets.map(t => `${t.variant} ${t.platform}`).join(', ')} (to ${sent.recipients} peers)`)

    // Nodes share the work (each target gets k + 1 builds at most, fewer once it is settled):
    // done when no node has a build left to run or wait for, and every node's own verdict on
    // every target is settled by the claims it stored.
    let reported = 0
    await until(async () => {
      let total = 0
      let doneNodes = 0
      for (const d of daemons) {
        const stored = await d.store.claimsForCommit(project.repository, project.commit, policy.builderKeys.keys())
        total += stored.length
        const { verdicts } = judge({ policy, announcements: [announcement], claims: judgedClaims(stored) })
        const idle = d.scheduler.running().length === 0 && (await d.store.listJobs('queued')).length === 0
        if (idle && verdicts.length > 0 && verdicts.every(v => v.status !== 'pending')) doneNodes++
      }
      if (total > reported) { reported = total; say(`claims stored across the network: ${total}`) }
      return doneNodes === n
    }, deadline, init.signal)

    const views: DevnetNodeView[] = []
    let first: TargetVerdict[] = []
    for (const [i, d] of daemons.entries()) {
      const stored = await d.store.claimsForCommit(project.repository, project.commit, policy.builderKeys.keys())
      const claims = judgedClaims(stored)
      const { verdicts } = judge({ policy, announcements: [announcement], claims })
      if (views.length === 0) first = verdicts
      const engineId = stored.find(c => c.keyId === d.keyId)?.claim.environment.engine.id
      views.push({
        peerId: d.peerId,
        keyId: d.keyId,
        ...(engineId != null ? { engineId } : {}),
        ...(engines[i] != null ? { bridge: engines[i].bridge } : {}),
        verdicts: verdicts.map(v => ({ target: v.key, status: v.status, ...(v.consensusDigest != null ? { digest: v.consensusDigest } : {}), agreeing: v.agreeing.length }))
      })
    }
    const settled = views.every(v => v.verdicts.every(x => x.status !== 'pending'))
    const digests = new Set(views.flatMap(v => v.verdicts.map(x => `${x.target} ${x.digest ?? ''}`)))
    const reproducible = settled && views.every(v => v.verdicts.length > 0 && v.verdicts.every(x => x.status === 'reproducible')) && digests.size === first.length
    return {
      repository: project.repository,
      tag: project.tag,
      commit: project.commit,
      threshold: policy.threshold,
      engines: own ? 'own' : 'one',
      verdicts: first,
      nodes: views,
      reproducible,
      settled,
      ...(init.keep === true ? { dir } : {}),
      seconds: Math.round((Date.now() - started) / 100) / 10
    }
  } finally {
    for (const d of daemons) await d.stop().catch((err: unknown) => { log.warn({ err }, 'stopping a devnet node failed') })
    // Also after a failed start: each engine's stop undoes what its start got to.
    if (engines.length > 0) say(`stopping ${engines.length} Docker engines`)
    await Promise.all(engines.map(async e => { await e.stop() }))
    if (init.keep !== true) await rm(dir, { recursive: true, force: true })
  }
}
