/**
 * Scale benchmark: what arrives at a node, idle and through a release, as the network grows.
 *
 * Real daemons (store, ingest, transparency log, witness; no engine) over loopback TCP, at
 * N = 25, 50 and 100 (BENCH_SIZES), spread over K child processes (BENCH_PROCS; by default one
 * per core, at least 2 and at most 16): node i lives in child i mod K, so each event loop carries
 * about N/K nodes' noise, yamux, TCP and signatures instead of all N (one process for all let
 * the announcement p99 at 100 nodes swing from 0.4 to 5.6 s with the machine's load: it measured
 * the shared loop, not the protocol). This process only orchestrates: it makes the identities and
 * the policy, starts the nodes in index order, each bootstrapping to up to 3 random earlier nodes
 * whichever child hosts them (seeded by BENCH_SEED, so runs compare), tells the children when to
 * snapshot their counters and which node publishes what, and merges what they report. The
 * children start afresh for each N and stop their nodes together at its end; a child that dies
 * fails the run at once. For each N:
 *  - idle: BENCH_IDLE_S seconds of real time (60). Time is scaled by BENCH_TIME_SCALE (10): the
 *    node timers that remain (the back-fill resync, 10 minutes) run that much faster, so the
 *    window holds 10 minutes of node time of them; gossipsub's heartbeat (700 ms, the production
 *    default) is not scaled. Rates are per real second, so timer-driven traffic is over-counted
 *    by the scale, never under-counted.
 *  - release: shaped like a Neko release, 43 targets (BENCH_TARGETS) each claimed by 3 builders.
 *    Its announcement, and 4 more of other tags (BENCH_ANNOUNCEMENTS, 5: samples of the
 *    propagation), published from random nodes 6 s apart (BENCH_ANNOUNCE_GAP_MS), then the 129
 *    claims from random nodes at 4 a second, then 15 s, and longer (BENCH_RELEASE_SETTLE_S, 180
 *    at most) until every log holds the whole release and a checkpoint over it: a starved
 *    process lags, and a release it has not taken in whole would be counted short
 *    (`complete`; the release checks require it).
 *
 * Measured per node, in the child that hosts it: gossip messages arriving (every copy,
 * duplicates included, counted where gossipsub decodes an RPC) and their topics; witness
 * exchanges (each cosignature counts a checkpoint pushed to its witness and a consistency proof
 * asked of the log); bytes arriving (every TCP byte every socket of every child read, over N:
 * gossip, back-fill, fetches and their framing); the announcement's arrival at every node (p50,
 * p99 over nodes x announcements), timed on the clock all processes share
 * (performance.timeOrigin + now) from the moment the publishing child hands it to its node;
 * cosignatures on each node's newest checkpoint; each child's event-loop delay (the worst child's
 * p99 is the run's). A least-squares line per-node rate = a + b*N is fitted over the measured
 * sizes and extrapolated to 1,000 and 10,000 nodes with its standard error of prediction.
 *
 * Stores live on /dev/shm when there is one (every node's LevelDB syncs its writes).
 * BENCH_CHECKPOINT_MS sets the logs' checkpoint interval (the product's default, 1 s, unless set):
 * every stored message grows every log; the push budget (push-budget.ts, product defaults)
 * decides which checkpoints go to the w witnesses, 2w exchanges a round.
 *
 * Targets (issue 23): idle <= 5 messages/s and <= 20 KB/s per node at every measured N and
 * extrapolated; a release adds no more per node than its own messages: unique gossip messages
 * (not counting a node's own coming back) at most its announcements and claims, and witness
 * exchanges at most one per message, besides the one round (2w) the push budget holds from idle
 * time and the 2w per 5 minutes time earns while the release window lasts (the budget's floor,
 * which bounds how long a checkpoint in a trickle waits); announcement p99 <= 2 s at 100 nodes.
 */
import { subscribe } from 'node:diagnostics_channel'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createDaemon, type Daemon } from '../src/node/daemon/index.js'
import { createLogger } from '../src/node/logger.js'
import { TOPICS } from '../src/node/p2p/index.js'
import { DEFAULT_PUSH_FLOOR_MS } from '../src/node/tlog/push-budget.js'
import { createStore } from '../src/node/store/index.js'
import type { WitnessStats } from '../src/node/tlog/index.js'
import { exportPrivatePem, generateIdentity, identityFromPrivatePem } from '../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { parseNote } from '../src/protocol/tlog/note.js'
import { forkChild, type BenchChild } from './child.js'
import { sampleClaim } from './claims.js'
import { prng } from './prng.js'

const logger = createLogger({ defaultLevel: 'error' })
const SIZES = (process.env.BENCH_SIZES ?? '25,50,100').split(',').map(Number)
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? 60)
const TIME_SCALE = Number(process.env.BENCH_TIME_SCALE ?? 10)
const ANNOUNCEMENTS = Number(process.env.BENCH_ANNOUNCEMENTS ?? 5)
const TARGETS = Number(process.env.BENCH_TARGETS ?? 43)
const BUILDERS = 3
const CLAIMS = TARGETS * BUILDERS
const SETTLE_MS = 15_000
/** After the claims, at most this long for every log to take in the whole release and sign a checkpoint over it (a starved process lags). */
const RELEASE_SETTLE_MAX_MS = Number(process.env.BENCH_RELEASE_SETTLE_S ?? 180) * 1000
/** Between announcements: one release's witnessing (every log grows) settles before the next is timed. */
const ANNOUNCE_GAP_MS = Number(process.env.BENCH_ANNOUNCE_GAP_MS ?? 6_000)
/** A log's shortest time between checkpoints; the product's default (1 s) unless set. */
const CHECKPOINT_MS = process.env.BENCH_CHECKPOINT_MS !== undefined ? Number(process.env.BENCH_CHECKPOINT_MS) : undefined
const DIALS = 3
/** Child processes the nodes are spread over (node i in child i mod K): one event loop per core, not one for all. */
const PROCS = Number(process.env.BENCH_PROCS ?? Math.max(2, Math.min(availableParallelism(), 16)))
const BUDGET = { messagesPerSecond: 5, bytesPerSecond: 20_000 }
const TARGET_P99_MS = 2_000
const EXTRAPOLATE = [1_000, 10_000]

// LevelDB syncs its writes (the log's entries, checkpoints, each cosignature): N nodes on one
// disk would measure the disk's syncs, which N machines do in parallel. /dev/shm when there is one.
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

const self = fileURLToPath(import.meta.url)

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const random = prng(Number(process.env.BENCH_SEED ?? 1))
const pick = (n: number): number => Math.floor(random() * n)

function quantile (xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1))]!
}

const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length)
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d

// --- Between the coordinator and its children (one process hosts about N/K nodes). ---

/** The shared clock: every process's ms since the epoch, sub-millisecond, so that arrival times compare across processes. */
const clock = (): number => performance.timeOrigin + performance.now()

/** One node's log and witness, as its child reads them. */
interface NodeState {
  index: number
  size: number
  checkpointSize: number
  witness: Pick<WitnessStats, 'cosigned' | 'pushRounds' | 'coalesced' | 'pushedSize' | 'waitingSize' | 'sampled' | 'candidates' | 'witnessesPerLog'> | undefined
  /** Cosignatures on its newest checkpoint pushed to its witnesses (a newer one may wait for the push budget). */
  cosignatures: number
  /** Its own log is reported under-witnessed. */
  underWitnessed: boolean
  /** Gossip messages it ignored over the admission rates, and its connected peers. */
  throttled: number
  peers: number
}
/** What arrived at one child's nodes so far (counters since the child started); the loop delay since its last snapshot. */
interface ChildSnapshot {
  at: number
  bytes: number
  cosigned: number
  messages: Record<string, number>
  byTopic: Record<string, Record<string, number>>
  loopP99Ms: number
  /** Unique gossip messages per peer since the snapshot that started counting them (`unique: 'end'`). */
  unique?: Record<string, number>
}
type ToChild =
  | { type: 'start', index: number, key: string, bootstrap: string[] }
  | { type: 'meshed', deadline: number }
  | { type: 'snapshot', unique: 'start' | 'end' | 'keep' }
  | { type: 'nodes' }
  | { type: 'announce', index: number, envelope: string }
  | { type: 'publish', index: number, topic: string, data: string }
  | { type: 'arrivals', ids: string[] }
  | { type: 'stop' }
type FromChild =
  | { type: 'ready' }
  | { type: 'started', addr: string, peerId: string }
  | { type: 'meshed' }
  | { type: 'snapshot', snapshot: ChildSnapshot }
  | { type: 'nodes', nodes: NodeState[] }
  | { type: 'announced', id: string, at: number, recipients: number }
  | { type: 'published', recipients: number }
  | { type: 'arrivals', arrivals: Record<string, Array<[number, number]>> }
  | { type: 'stopped' }

// --- A child: its nodes, and what arrives at them. ---

/**
 * `own`: what the node published itself. Gossip forwards a message to every mesh peer but the
 * one it came from (the messages carry no gossipsub author), so a publisher may get its own back:
 * a copy, counted in the rates, not a message it received.
 */
interface Arrivals { messages: number, byTopic: Map<string, number>, unique: Set<string> | undefined, own: Set<string> }
const arrivals = new Map<string, Arrivals>() // peer id → what reached it
const arrivalsOf = (peer: string): Arrivals => {
  let a = arrivals.get(peer)
  if (a === undefined) { a = { messages: 0, byTopic: new Map(), unique: undefined, own: new Set() }; arrivals.set(peer, a) }
  return a
}
const hashOf = (data: Uint8Array): string => createHash('sha256').update(data).digest('base64')

/** Counts every RPC at the point gossipsub decodes it, on every instance in this process. */
async function countGossip (): Promise<void> {
  // The class is not exported; this is the very module file the package's entry point loads.
  const mod = await import(new URL('../node_modules/@libp2p/gossipsub/dist/src/gossipsub.js', import.meta.url).href) as { GossipSub: { prototype: Record<string, unknown> } }
  const proto = mod.GossipSub.prototype
  const decode = proto.decodeRpc as (this: { components: { peerId: { toString: () => string } } }, bytes: Uint8Array) => { messages: Array<{ topic?: string, data?: Uint8Array }> }
  proto.decodeRpc = function (this: { components: { peerId: { toString: () => string } } }, bytes: Uint8Array) {
    const rpc = decode.call(this, bytes)
    const a = arrivalsOf(this.components.peerId.toString())
    for (const m of rpc.messages) {
      a.messages++
      const topic = m.topic ?? ''
      a.byTopic.set(topic, (a.byTopic.get(topic) ?? 0) + 1)
      if (a.unique !== undefined && m.data !== undefined) {
        const h = hashOf(m.data)
        if (!a.own.has(h)) a.unique.add(h)
      }
    }
    return rpc
  }
}

/** Every TCP byte every socket of this process reads. */
function countBytes (): () => number {
  const sockets = new Set<Socket>()
  let closedBytes = 0
  for (const channel of ['net.client.socket', 'net.server.socket']) {
    subscribe(channel, (msg) => {
      const socket = (msg as { socket: Socket }).socket
      sockets.add(socket)
      socket.once('close', () => { closedBytes += socket.bytesRead; sockets.delete(socket) })
    })
  }
  return () => closedBytes + [...sockets].reduce((s, x) => s + x.bytesRead, 0)
}

function nodeState (index: number, d: Daemon): NodeState {
  const w = d.stats().tlog?.witness
  const note = w === undefined ? undefined : d.tlog?.checkpoints().find(c => c.size === w.pushedSize)?.note
  return {
    index,
    size: d.tlog?.size() ?? 0,
    checkpointSize: d.tlog?.checkpointSize() ?? 0,
    witness: w === undefined ? undefined : { cosigned: w.cosigned, pushRounds: w.pushRounds, coalesced: w.coalesced, pushedSize: w.pushedSize, sampled: w.sampled, candidates: w.candidates, witnessesPerLog: w.witnessesPerLog, ...(w.waitingSize !== undefined ? { waitingSize: w.waitingSize } : {}) },
    cosignatures: note === undefined ? 0 : Math.max(0, parseNote(note).signatures.length - 1),
    underWitnessed: (w?.underWitnessed ?? []).some(u => u.logKeyId === d.keyId),
    throttled: d.p2p.stats().throttled,
    peers: d.p2p.connectedPeers().length
  }
}

/** A child process: starts the nodes it is told to, in `dir`, and answers for them. */
async function runChild (dir: string): Promise<void> {
  // The coordinator gone, nothing else would stop these nodes.
  process.on('disconnect', () => { process.exit(1) })
  await countGossip()
  const bytesRead = countBytes()
  const policy = parsePolicy(JSON.parse(await readFile(join(dir, 'policy.json'), 'utf8')))
  const daemons = new Map<number, Daemon>()
  const stored = new Map<string, Array<[number, number]>>() // message id → [node index, arrival time]
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const daemon = (index: number): Daemon => {
    const d = daemons.get(index)
    if (d === undefined) throw new Error(`node ${index} is not in this process`)
    return d
  }
  const handle = async (m: ToChild): Promise<FromChild> => {
    switch (m.type) {
      case 'start': {
        const i = m.index
        const store = await createStore({}, { path: join(dir, `n${i}`, 'store') })
        const d = await createDaemon({ identity: identityFromPrivatePem(m.key), store, policy, logger }, {
          listen: ['/ip4/127.0.0.1/tcp/0'],
          bootstrap: m.bootstrap,
          mdns: false,
          tlog: { path: join(dir, `n${i}`, 'tlog'), ...(CHECKPOINT_MS !== undefined ? { checkpointIntervalMs: CHECKPOINT_MS } : {}) },
          backfill: { resyncIntervalMs: Math.round(600_000 / TIME_SCALE) }
        })
        d.onStored((s) => {
          let at = stored.get(s.id)
          if (at === undefined) { at = []; stored.set(s.id, at) }
          at.push([i, clock()])
        })
        await d.start()
        daemons.set(i, d)
        return { type: 'started', addr: d.multiaddrs()[0]!, peerId: d.peerId }
      }
      case 'meshed':
        while (![...daemons.values()].every(d => (d.p2p.stats().mesh[TOPICS.announcements] ?? 0) >= 1) && clock() < m.deadline) await sleep(200)
        return { type: 'meshed' }
      case 'snapshot': {
        const peers = [...daemons.values()].map(d => d.peerId)
        const unique = m.unique === 'end' ? Object.fromEntries(peers.map(p => [p, arrivalsOf(p).unique?.size ?? 0])) : undefined
        for (const p of peers) if (m.unique !== 'keep') arrivalsOf(p).unique = m.unique === 'start' ? new Set() : undefined
        const snapshot: ChildSnapshot = {
          at: clock(),
          bytes: bytesRead(),
          // Each cosignature is one checkpoint pushed to a witness and, past first sight, one proof asked of the log.
          cosigned: [...daemons.values()].reduce((n, d) => n + (d.stats().tlog?.witness.cosigned ?? 0), 0),
          messages: Object.fromEntries(peers.map(p => [p, arrivalsOf(p).messages])),
          byTopic: Object.fromEntries(peers.map(p => [p, Object.fromEntries(arrivalsOf(p).byTopic)])),
          loopP99Ms: loop.percentile(99) / 1e6,
          ...(unique !== undefined ? { unique } : {})
        }
        loop.reset()
        return { type: 'snapshot', snapshot }
      }
      case 'nodes':
        return { type: 'nodes', nodes: [...daemons].map(([i, d]) => nodeState(i, d)) }
      case 'announce': {
        // Timed here, in the process that publishes, on the clock the arrivals are timed on.
        const at = clock()
        arrivalsOf(daemon(m.index).peerId).own.add(hashOf(Buffer.from(m.envelope, 'utf8')))
        const r = await daemon(m.index).announce(m.envelope)
        return { type: 'announced', id: r.id, at, recipients: r.recipients }
      }
      case 'publish': {
        const data = Buffer.from(m.data, 'utf8')
        arrivalsOf(daemon(m.index).peerId).own.add(hashOf(data))
        return { type: 'published', recipients: (await daemon(m.index).p2p.publish(m.topic, data)).recipients }
      }
      case 'arrivals':
        return { type: 'arrivals', arrivals: Object.fromEntries(m.ids.map(id => [id, stored.get(id) ?? []])) }
      case 'stop':
        loop.disable()
        await Promise.all([...daemons.values()].map(async d => { await d.stop() }))
        return { type: 'stopped' }
    }
  }
  process.on('message', (m: ToChild) => {
    handle(m).then((reply) => {
      process.send?.(reply, () => { if (reply.type === 'stopped') process.exit(0) })
    }, (err: unknown) => {
      // Loudly: the coordinator fails the run on this child's exit.
      process.stderr.write(`scale child ${process.pid}, on '${m.type}': ${(err as Error).stack ?? String(err)}\n`)
      process.exit(1)
    })
  })
  process.send?.({ type: 'ready' } satisfies FromChild)
}

// --- The coordinator: the network of N nodes over K children, and what arrived, merged. ---

interface Snapshot { at: number, bytes: number, cosigned: number, messages: Map<string, number>, byTopic: Map<string, Map<string, number>>, loopP99Ms: number[], unique: Map<string, number> }
function merge (snapshots: ChildSnapshot[]): Snapshot {
  return {
    // The children answer within milliseconds of each other; their mean stands for the moment.
    at: mean(snapshots.map(s => s.at)),
    bytes: snapshots.reduce((n, s) => n + s.bytes, 0),
    cosigned: snapshots.reduce((n, s) => n + s.cosigned, 0),
    messages: new Map(snapshots.flatMap(s => Object.entries(s.messages))),
    byTopic: new Map(snapshots.flatMap(s => Object.entries(s.byTopic).map(([p, t]) => [p, new Map(Object.entries(t))] as const))),
    loopP99Ms: snapshots.map(s => round(s.loopP99Ms, 0)),
    unique: new Map(snapshots.flatMap(s => Object.entries(s.unique ?? {})))
  }
}

interface Rates {
  /** Gossip messages (every copy) and witness exchanges (pushes and proof requests) arriving, per node. */
  messagesPerSecond: number
  gossipPerSecond: number
  maxGossipPerSecond: number
  witnessExchangesPerSecond: number
  bytesPerSecond: number
  seconds: number
  byTopic: Record<string, number>
}
function rates (from: Snapshot, to: Snapshot, peers: string[]): Rates {
  const seconds = (to.at - from.at) / 1000
  const per = peers.map(p => ((to.messages.get(p) ?? 0) - (from.messages.get(p) ?? 0)) / seconds)
  const byTopic: Record<string, number> = {}
  for (const topic of Object.values(TOPICS)) {
    const name = topic.split('/')[2] ?? topic
    byTopic[name] = round(mean(peers.map(p => ((to.byTopic.get(p)?.get(topic) ?? 0) - (from.byTopic.get(p)?.get(topic) ?? 0)) / seconds)), 3)
  }
  const exchanges = 2 * (to.cosigned - from.cosigned) / peers.length / seconds
  return {
    messagesPerSecond: round(mean(per) + exchanges, 3),
    gossipPerSecond: round(mean(per), 3),
    maxGossipPerSecond: round(Math.max(...per), 3),
    witnessExchangesPerSecond: round(exchanges, 3),
    bytesPerSecond: round((to.bytes - from.bytes) / peers.length / seconds, 0),
    seconds: round(seconds, 1),
    byTopic
  }
}

interface Point {
  n: number
  /** Child processes hosting the N nodes. */
  procs: number
  idle: Rates
  release: Rates & { uniquePerNode: number, witnessExchangesPerNode: number, releaseMessages: number, arrivedByTopic: Record<string, number>, pushRoundsPerLog: number, coalescedPerLog: number, entriesPerLog: number, entriesMinPerLog: number, checkpointEntriesPerLog: number, settledMs: number, complete: boolean, recipientsMin: number, publishedToNone: number, throttledPerNode: number, peersMin: number }
  /** Event-loop delay p99 ms of the most delayed child (how starved the run was), and of each child. */
  loopDelayP99Ms: { idle: number, release: number }
  loopDelayP99MsPerProc: { idle: number[], release: number[] }
  announcement: { p50Ms: number, p99Ms: number, toAllMaxMs: number, samples: number }
  cosignatures: { mean: number, min: number, max: number }
  witnessing: { sampledLogsMean: number, candidatesMean: number, underWitnessed: number, witnessesPerLog: number, waitingAtEnd: number }
}

type Child = BenchChild<FromChild, ToChild>

async function run (n: number): Promise<Point> {
  const dir = await mkdtemp(join(base, 'neko-bench-scale-'))
  const announcer = generateIdentity()
  const builders = Array.from({ length: BUILDERS }, () => generateIdentity())
  await writeFile(join(dir, 'policy.json'), JSON.stringify({
    version: 1,
    builders: builders.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'announcer', publicKey: announcer.publicKeyPem }],
    threshold: 2,
    minOperators: 2,
    allowedDissent: 0
  }))
  const procs = Math.min(PROCS, n)
  const children: Child[] = []
  try {
    for (let c = 0; c < procs; c++) children.push(forkChild<FromChild, ToChild>(self, ['node', dir]))
    await Promise.all(children.map(async c => await c.next('ready')))
    /** A wait that a child's crash cuts short, failing the run at once. */
    const wait = async (ms: number): Promise<void> => { await Promise.race([sleep(ms), ...children.map(async c => await c.gone)]) }
    /** Node i lives in child i mod K. */
    const childOf = (i: number): Child => children[i % procs]!
    /** Sends `m` to `child` and waits for its answer. */
    const ask = async <T extends FromChild['type']>(child: Child, m: ToChild, reply: T): Promise<Extract<FromChild, { type: T }>> => {
      // Whatever comes back before `next` is asked waits for it.
      child.send(m)
      return await child.next(reply)
    }
    const askAll = async <T extends FromChild['type']>(m: ToChild, reply: T): Promise<Array<Extract<FromChild, { type: T }>>> => await Promise.all(children.map(async c => await ask(c, m, reply)))
    const nodes = async (): Promise<NodeState[]> => (await askAll({ type: 'nodes' }, 'nodes')).flatMap(r => r.nodes).sort((a, b) => a.index - b.index)
    const snapshot = async (unique: 'start' | 'end' | 'keep' = 'keep'): Promise<Snapshot> => merge((await askAll({ type: 'snapshot', unique }, 'snapshot')).map(r => r.snapshot))

    // In index order, each to up to 3 random earlier nodes, whichever process hosts them.
    const addrs: string[] = []
    const peers: string[] = []
    for (let i = 0; i < n; i++) {
      const bootstrap = i === 0 ? [] : [...new Set(Array.from({ length: Math.min(DIALS, i) }, () => addrs[pick(i)]!))]
      const started = await ask(childOf(i), { type: 'start', index: i, key: exportPrivatePem(generateIdentity()), bootstrap }, 'started')
      addrs.push(started.addr)
      peers.push(started.peerId)
    }
    // Settled: every node in a mesh, the start-up checkpoints and statements gone by.
    await askAll({ type: 'meshed', deadline: clock() + 120_000 }, 'meshed')
    await wait(SETTLE_MS)

    const idleFrom = await snapshot()
    await wait(IDLE_S * 1000)
    const idleTo = await snapshot()
    const idle = rates(idleFrom, idleTo, peers)
    process.stderr.write(`N=${n} idle: ${JSON.stringify(idle)}\n`)

    const releaseFrom = await snapshot('start')
    const published: Array<{ id: string, at: number, from: number }> = []
    /** Peers each message was first sent to by its publisher (gossipsub's flood publish: every subscribed peer). */
    const recipients: number[] = []
    const commit = createHash('sha256').update(`commit-${n}`).digest('hex').slice(0, 40)
    const targets = Array.from({ length: TARGETS }, (_, t) => ({ variant: `variant-${Math.floor(t / 2)}`, platform: t % 2 === 0 ? 'linux/amd64' : 'linux/arm64' }))
    const before = await nodes()
    for (let k = 0; k < ANNOUNCEMENTS; k++) {
      const env = signAnnouncement({
        repository: 'https://github.com/m1k1o/neko',
        tag: `v3.${n}.${k}`,
        commit,
        recipe: { name: 'neko', digest: `sha256:${createHash('sha256').update('recipe').digest('hex')}` },
        // The first is the release (every target); the others, samples of propagation, name one each.
        targets: k === 0 ? targets : [targets[k % TARGETS]!],
        announcedAt: new Date().toISOString()
      }, announcer)
      const from = pick(n)
      const r = await ask(childOf(from), { type: 'announce', index: from, envelope: JSON.stringify(env) }, 'announced')
      published.push({ id: r.id, at: r.at, from })
      recipients.push(r.recipients)
      await wait(ANNOUNCE_GAP_MS)
    }
    for (let c = 0; c < CLAIMS; c++) {
      // Target c / 3 by builder c % 3, all three agreeing on its digests.
      const t = Math.floor(c / BUILDERS)
      const claim = sampleClaim(t)
      const env = signClaim({ ...claim, target: { ...claim.target, ...targets[t]!, commit, tag: `v3.${n}.0` } }, builders[c % BUILDERS]!)
      const from = pick(n)
      recipients.push((await ask(childOf(from), { type: 'publish', index: from, topic: TOPICS.claims, data: JSON.stringify(env) }, 'published')).recipients)
      await wait(250)
    }
    // Settled: every log holds the release and a checkpoint over it (then pushed, or waiting
    // for the push budget), or the deadline passed.
    const settleFrom = Date.now()
    const complete = (states: NodeState[]): boolean => states.every((s, i) => s.size - before[i]!.size >= ANNOUNCEMENTS + CLAIMS && s.checkpointSize === s.size)
    await wait(SETTLE_MS)
    while (!complete(await nodes()) && Date.now() - settleFrom < RELEASE_SETTLE_MAX_MS) await wait(1000)
    const settledMs = Date.now() - settleFrom
    const releaseTo = await snapshot('end')
    const after = await nodes()
    const release = rates(releaseFrom, releaseTo, peers)
    const uniquePer = peers.map(p => releaseTo.unique.get(p) ?? 0)

    const latencies: number[] = []
    const toAll: number[] = []
    const arrived = new Map<string, Array<[number, number]>>()
    for (const r of await askAll({ type: 'arrivals', ids: published.map(a => a.id) }, 'arrivals')) {
      for (const [id, at] of Object.entries(r.arrivals)) arrived.set(id, [...arrived.get(id) ?? [], ...at])
    }
    for (const a of published) {
      const at = new Map(arrived.get(a.id) ?? [])
      const ls = [...at].filter(([i]) => i !== a.from).map(([, t]) => t - a.at)
      latencies.push(...ls)
      toAll.push(at.size >= n ? Math.max(...ls) : Number.POSITIVE_INFINITY)
    }
    const wStats = after.map(s => s.witness)
    const cosigs = after.map(s => s.cosignatures)
    const perLog = (f: (s: NonNullable<typeof wStats[number]>) => number): number => round(mean(wStats.map((s, i) => s === undefined ? 0 : f(s) - (before[i]!.witness === undefined ? 0 : f(before[i]!.witness!)))), 2)
    const point: Point = {
      n,
      procs,
      idle,
      release: {
        ...release,
        // Exactly M(1 - 1/N) when every message reached every node: kept unrounded enough that the fit over 1/N sees no rounding noise.
        uniquePerNode: round(mean(uniquePer), 3),
        witnessExchangesPerNode: round(release.witnessExchangesPerSecond * release.seconds, 1),
        releaseMessages: ANNOUNCEMENTS + CLAIMS,
        arrivedByTopic: Object.fromEntries(Object.entries(release.byTopic).map(([t, r]) => [t, round(r * release.seconds, 1)])),
        pushRoundsPerLog: perLog(s => s.pushRounds),
        coalescedPerLog: perLog(s => s.coalesced),
        // What each log took in during the window, and what its newest signed checkpoint covers of it.
        entriesPerLog: round(mean(after.map((s, i) => s.size - before[i]!.size)), 1),
        entriesMinPerLog: Math.min(...after.map((s, i) => s.size - before[i]!.size)),
        checkpointEntriesPerLog: round(mean(after.map((s, i) => s.checkpointSize - before[i]!.size)), 1),
        settledMs,
        complete: complete(after),
        // Why a log may lack entries: a message its publisher sent to no peer, or ones nodes ignored over the admission rates.
        recipientsMin: Math.min(...recipients),
        publishedToNone: recipients.filter(r => r === 0).length,
        throttledPerNode: round(mean(after.map((s, i) => s.throttled - before[i]!.throttled)), 1),
        peersMin: Math.min(...after.map(s => s.peers))
      },
      loopDelayP99Ms: { idle: Math.max(...idleTo.loopP99Ms), release: Math.max(...releaseTo.loopP99Ms) },
      loopDelayP99MsPerProc: { idle: idleTo.loopP99Ms, release: releaseTo.loopP99Ms },
      announcement: { p50Ms: round(quantile(latencies, 0.5), 0), p99Ms: round(quantile(latencies, 0.99), 0), toAllMaxMs: round(Math.max(...toAll), 0), samples: latencies.length },
      cosignatures: { mean: round(mean(cosigs), 2), min: Math.min(...cosigs), max: Math.max(...cosigs) },
      witnessing: {
        sampledLogsMean: round(mean(wStats.map(s => s?.sampled ?? 0)), 1),
        candidatesMean: round(mean(wStats.map(s => s?.candidates ?? 0)), 1),
        underWitnessed: after.filter(s => s.underWitnessed).length,
        witnessesPerLog: wStats[0]?.witnessesPerLog ?? 0,
        // Logs whose newest checkpoint still waits for the push budget when the window ends.
        waitingAtEnd: wStats.filter(s => s?.waitingSize !== undefined).length
      }
    }
    process.stderr.write(`N=${n}: ${JSON.stringify(point)}\n`)
    // Every node stops at once, each child then exits.
    await askAll({ type: 'stop' }, 'stopped')
    await Promise.all(children.map(async c => { await c.exited() }))
    return point
  } finally {
    // On any failure (a child crashed, a node failed to start), no child outlives the run.
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL')
    await Promise.all(children.map(async c => { await c.exited() }))
    await rm(dir, { recursive: true, force: true })
  }
}

/** Least squares y = a + b x, and the standard error of a prediction at x0. */
function fit (xs: number[], ys: number[]): { a: number, b: number, predict: (x0: number) => { value: number, error: number } } {
  const k = xs.length
  const mx = mean(xs)
  const my = mean(ys)
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0)
  const b = sxx === 0 ? 0 : xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / sxx
  const a = my - b * mx
  const sse = xs.reduce((s, x, i) => s + (ys[i]! - (a + b * x)) ** 2, 0)
  const s = k > 2 ? Math.sqrt(sse / (k - 2)) : 0
  return { a, b, predict: (x0) => ({ value: a + b * x0, error: s * Math.sqrt(1 + 1 / k + (sxx === 0 ? 0 : (x0 - mx) ** 2 / sxx)) }) }
}

async function main (): Promise<void> {
  const points: Point[] = []
  for (const n of SIZES) points.push(await run(n))
  const xs = points.map(p => p.n)
  /** `inverse`: y = a + b/N, for what saturates as N grows (each node receives every message but the ones it published itself, M(1 - 1/N)). */
  const model = (name: string, ys: number[], inverse = false): Record<string, unknown> => {
    const f = fit(inverse ? xs.map(x => 1 / x) : xs, ys)
    const at = Object.fromEntries(EXTRAPOLATE.map(x => { const p = f.predict(inverse ? 1 / x : x); return [String(x), { value: round(p.value, 3), error: round(p.error, 3), upper: round(p.value + p.error, 3) }] }))
    process.stdout.write(`${name} = ${round(f.a, 4)} + ${round(f.b, 6)} * ${inverse ? '1/N' : 'N'}; ${EXTRAPOLATE.map(x => `N=${x}: ${String((at[String(x)] as { value: number }).value)} ± ${String((at[String(x)] as { error: number }).error)}`).join(', ')}\n`)
    return { a: round(f.a, 4), b: round(f.b, 6), ...(inverse ? { of: '1/N' } : {}), at }
  }
  for (const p of points) {
    process.stdout.write(`N=${p.n}: idle ${p.idle.messagesPerSecond} msg/s (gossip max ${p.idle.maxGossipPerSecond}), ${p.idle.bytesPerSecond} B/s; release ${p.release.messagesPerSecond} msg/s (${p.release.gossipPerSecond} gossip, ${p.release.witnessExchangesPerSecond} witness exchanges), ${p.release.bytesPerSecond} B/s, ${p.release.uniquePerNode} unique gossip messages and ${p.release.witnessExchangesPerNode} witness exchanges per node for ${p.release.releaseMessages} published; announcement p50 ${p.announcement.p50Ms} ms p99 ${p.announcement.p99Ms} ms; cosignatures per checkpoint ${p.cosignatures.mean} (min ${p.cosignatures.min}); event-loop delay p99 of the worst of ${p.procs} processes ${p.loopDelayP99Ms.idle} ms idle, ${p.loopDelayP99Ms.release} ms release\n`)
  }
  const idleMessages = model('idle messages/s per node', points.map(p => p.idle.messagesPerSecond))
  const idleBytes = model('idle bytes/s per node', points.map(p => p.idle.bytesPerSecond))
  const releaseMessages = model('release messages/s per node', points.map(p => p.release.messagesPerSecond))
  const releaseBytes = model('release bytes/s per node', points.map(p => p.release.bytesPerSecond))
  const releaseUnique = model('release unique gossip messages per node', points.map(p => p.release.uniquePerNode), true)
  const releaseExchanges = model('release witness exchanges per node', points.map(p => p.release.witnessExchangesPerNode))
  const upper = (m: Record<string, unknown>, x: number): number => ((m.at as Record<string, { upper: number }>)[String(x)]!).upper
  /** Witness exchanges a log's push budget allows over a release window: an exchange per message, the round held from idle time, and 2w per floor of the window's length. */
  const witnessBound = (p: Point): number => round(p.release.releaseMessages + 2 * p.witnessing.witnessesPerLog * (1 + p.release.seconds * 1000 / DEFAULT_PUSH_FLOOR_MS), 1)
  const largest = points.find(p => p.n === 100) ?? points[points.length - 1]!
  const checks = {
    idleMeasured: points.every(p => p.idle.messagesPerSecond <= BUDGET.messagesPerSecond && p.idle.bytesPerSecond <= BUDGET.bytesPerSecond),
    idleExtrapolated: EXTRAPOLATE.every(x => upper(idleMessages, x) <= BUDGET.messagesPerSecond && upper(idleBytes, x) <= BUDGET.bytesPerSecond),
    // Each node receives each of the release's messages once (copies aside, which the rates count)...
    releaseComplete: points.every(p => p.release.complete),
    releaseGossipOnlyItsMessages: points.every(p => p.release.uniquePerNode <= p.release.releaseMessages) && EXTRAPOLATE.every(x => upper(releaseUnique, x) <= largest.release.releaseMessages),
    // ...and witnesses them for at most one exchange each, besides the round the budget held from
    // idle time and what time earns while the release lasts (push-budget.ts).
    releaseWitnessingWithinItsMessages: points.every(p => p.release.witnessExchangesPerNode <= witnessBound(p)) && EXTRAPOLATE.every(x => upper(releaseExchanges, x) <= witnessBound(largest)),
    propagationP99: largest.announcement.p99Ms <= TARGET_P99_MS
  }
  process.stdout.write(JSON.stringify({
    bench: 'scale',
    procs: PROCS,
    idleSeconds: IDLE_S,
    checkpointIntervalMs: CHECKPOINT_MS ?? 'default (1000)',
    timeScale: TIME_SCALE,
    points,
    model: { idleMessages, idleBytes, releaseMessages, releaseBytes, releaseUnique, releaseExchanges },
    target: { idleMessagesPerSecond: BUDGET.messagesPerSecond, idleBytesPerSecond: BUDGET.bytesPerSecond, releasePerNode: 'unique gossip messages (its own aside) at most its announcements and claims; witness exchanges at most those plus one round (2w) plus 2w per 5 minutes the release window lasts', witnessBounds: Object.fromEntries(points.map(p => [String(p.n), witnessBound(p)])), announcementP99Ms: TARGET_P99_MS, at: largest.n },
    checks,
    met: Object.values(checks).every(Boolean)
  }) + '\n')
}

if (process.argv[2] === 'node') {
  await runChild(process.argv[3]!)
} else {
  if (!Number.isInteger(PROCS) || PROCS < 1) throw new Error(`BENCH_PROCS must be a whole number of processes, at least 1; got ${String(process.env.BENCH_PROCS)}`)
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
