/**
 * Scale benchmark: what arrives at a node, idle and through a release, as the network grows.
 *
 * Real daemons (store, ingest, transparency log, witness; no engine) in this one process over
 * loopback TCP, at N = 25, 50 and 100 (BENCH_SIZES). For each N:
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
 * Measured per node: gossip messages arriving (every copy, duplicates included, counted where
 * gossipsub decodes an RPC) and their topics; witness exchanges (each cosignature counts a
 * checkpoint pushed to its witness and a consistency proof asked of the log); bytes arriving (every TCP byte every socket of the
 * process read, over N: gossip, back-fill, fetches and their framing); the announcement's arrival
 * at every node (p50, p99 over nodes x announcements); cosignatures on each node's newest
 * checkpoint. A least-squares line per-node rate = a + b*N is fitted over the measured sizes and
 * extrapolated to 1,000 and 10,000 nodes with its standard error of prediction.
 *
 * Stores live on /dev/shm when there is one (every node's LevelDB syncs its writes).
 * BENCH_CHECKPOINT_MS sets the logs' checkpoint interval (the product's default, 1 s, unless set):
 * every stored message grows every log; the push budget (push-budget.ts, product defaults)
 * decides which checkpoints go to the w witnesses, 2w exchanges a round.
 *
 * Targets (issue 23): idle <= 5 messages/s and <= 20 KB/s per node at every measured N and
 * extrapolated; a release adds no more per node than its own messages: unique gossip messages
 * at most its announcements and claims, and witness exchanges at most one per message, besides
 * the one round (2w) the push budget holds from idle time; announcement p99 <= 2 s at 100 nodes.
 */
import { subscribe } from 'node:diagnostics_channel'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { createDaemon, type Daemon } from '../src/node/daemon/index.js'
import { createLogger } from '../src/node/logger.js'
import { TOPICS } from '../src/node/p2p/index.js'
import { createStore } from '../src/node/store/index.js'
import { generateIdentity, type SigningIdentity } from '../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { parseNote } from '../src/protocol/tlog/note.js'
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
const BUDGET = { messagesPerSecond: 5, bytesPerSecond: 20_000 }
const TARGET_P99_MS = 2_000
const EXTRAPOLATE = [1_000, 10_000]

// LevelDB syncs its writes (the log's entries, checkpoints, each cosignature): N nodes on one
// disk would measure the disk's syncs, which N machines do in parallel. /dev/shm when there is one.
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

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

// --- What arrives: gossip RPCs as gossipsub decodes them, and every TCP byte read. ---

interface Arrivals { messages: number, byTopic: Map<string, number>, unique: Set<string> | undefined }
const arrivals = new Map<string, Arrivals>() // peer id → what reached it
const arrivalsOf = (peer: string): Arrivals => {
  let a = arrivals.get(peer)
  if (a === undefined) { a = { messages: 0, byTopic: new Map(), unique: undefined }; arrivals.set(peer, a) }
  return a
}

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
      if (a.unique !== undefined && m.data !== undefined) a.unique.add(createHash('sha256').update(m.data).digest('base64'))
    }
    return rpc
  }
}

const sockets = new Set<Socket>()
let closedBytes = 0
for (const channel of ['net.client.socket', 'net.server.socket']) {
  subscribe(channel, (msg) => {
    const socket = (msg as { socket: Socket }).socket
    sockets.add(socket)
    socket.once('close', () => { closedBytes += socket.bytesRead; sockets.delete(socket) })
  })
}
const bytesRead = (): number => closedBytes + [...sockets].reduce((s, x) => s + x.bytesRead, 0)

interface Snapshot { at: number, bytes: number, cosigned: number, messages: Map<string, number>, byTopic: Map<string, Map<string, number>> }
function snapshot (daemons: Daemon[]): Snapshot {
  return {
    at: performance.now(),
    bytes: bytesRead(),
    // Each cosignature is one checkpoint pushed to a witness and, past first sight, one proof asked of the log.
    cosigned: daemons.reduce((n, d) => n + (d.stats().tlog?.witness.cosigned ?? 0), 0),
    messages: new Map([...arrivals].map(([p, a]) => [p, a.messages])),
    byTopic: new Map([...arrivals].map(([p, a]) => [p, new Map(a.byTopic)]))
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

// --- One network of N nodes. ---

interface Point {
  n: number
  idle: Rates
  release: Rates & { uniquePerNode: number, witnessExchangesPerNode: number, releaseMessages: number, arrivedByTopic: Record<string, number>, pushRoundsPerLog: number, coalescedPerLog: number, entriesPerLog: number, checkpointEntriesPerLog: number, settledMs: number, complete: boolean }
  /** Event-loop delay of the one process all nodes share, p99 ms: how starved the run was. */
  loopDelayP99Ms: { idle: number, release: number }
  announcement: { p50Ms: number, p99Ms: number, toAllMaxMs: number, samples: number }
  cosignatures: { mean: number, min: number, max: number }
  witnessing: { sampledLogsMean: number, candidatesMean: number, underWitnessed: number, witnessesPerLog: number, waitingAtEnd: number }
}

async function run (n: number): Promise<Point> {
  const dir = await mkdtemp(join(base, 'neko-bench-scale-'))
  const announcer = generateIdentity()
  const builders = Array.from({ length: BUILDERS }, () => generateIdentity())
  const policy = parsePolicy({
    version: 1,
    builders: builders.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'announcer', publicKey: announcer.publicKeyPem }],
    threshold: 2,
    minOperators: 2,
    allowedDissent: 0
  })
  const identities: SigningIdentity[] = Array.from({ length: n }, () => generateIdentity())
  const daemons: Daemon[] = []
  const stored = new Map<string, Map<number, number>>() // message id → node index → arrival time
  try {
    for (let i = 0; i < n; i++) {
      const store = await createStore({}, { path: join(dir, `n${i}`, 'store') })
      const bootstrap = i === 0 ? [] : [...new Set(Array.from({ length: Math.min(DIALS, i) }, () => daemons[pick(i)]!.multiaddrs()[0]!))]
      const d = await createDaemon({ identity: identities[i]!, store, policy, logger }, {
        listen: ['/ip4/127.0.0.1/tcp/0'],
        bootstrap,
        mdns: false,
        tlog: { path: join(dir, `n${i}`, 'tlog'), ...(CHECKPOINT_MS !== undefined ? { checkpointIntervalMs: CHECKPOINT_MS } : {}) },
        backfill: { resyncIntervalMs: Math.round(600_000 / TIME_SCALE) }
      })
      d.onStored((m) => {
        let at = stored.get(m.id)
        if (at === undefined) { at = new Map(); stored.set(m.id, at) }
        at.set(i, performance.now())
      })
      await d.start()
      daemons.push(d)
    }
    const peers = daemons.map(d => d.peerId)
    // Settled: every node in a mesh, the start-up checkpoints and statements gone by.
    const deadline = Date.now() + 120_000
    while (!daemons.every(d => (d.p2p.stats().mesh[TOPICS.announcements] ?? 0) >= 1) && Date.now() < deadline) await sleep(200)
    await sleep(SETTLE_MS)

    const loop = monitorEventLoopDelay({ resolution: 10 })
    loop.enable()
    const idleFrom = snapshot(daemons)
    await sleep(IDLE_S * 1000)
    const idleTo = snapshot(daemons)
    const idleLoop = loop.percentile(99) / 1e6
    loop.reset()
    const idle = rates(idleFrom, idleTo, peers)
    process.stderr.write(`N=${n} idle: ${JSON.stringify(idle)}\n`)

    for (const p of peers) arrivalsOf(p).unique = new Set()
    const releaseFrom = snapshot(daemons)
    const published: Array<{ id: string, at: number, from: number }> = []
    const commit = createHash('sha256').update(`commit-${n}`).digest('hex').slice(0, 40)
    const targets = Array.from({ length: TARGETS }, (_, t) => ({ variant: `variant-${Math.floor(t / 2)}`, platform: t % 2 === 0 ? 'linux/amd64' : 'linux/arm64' }))
    const before = daemons.map(d => d.stats().tlog?.witness)
    const sizesBefore = daemons.map(d => d.tlog?.size() ?? 0)
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
      const at = performance.now()
      const r = await daemons[from]!.announce(env)
      published.push({ id: r.id, at, from })
      await sleep(ANNOUNCE_GAP_MS)
    }
    for (let c = 0; c < CLAIMS; c++) {
      // Target c / 3 by builder c % 3, all three agreeing on its digests.
      const t = Math.floor(c / BUILDERS)
      const claim = sampleClaim(t)
      const env = signClaim({ ...claim, target: { ...claim.target, ...targets[t]!, commit, tag: `v3.${n}.0` } }, builders[c % BUILDERS]!)
      await daemons[pick(n)]!.p2p.publish(TOPICS.claims, Buffer.from(JSON.stringify(env), 'utf8'))
      await sleep(250)
    }
    // Settled: every log holds the release and a checkpoint over it (then pushed, or waiting
    // for the push budget), or the deadline passed.
    const settleFrom = Date.now()
    const complete = (): boolean => daemons.every((d, i) => (d.tlog?.size() ?? 0) - sizesBefore[i]! >= ANNOUNCEMENTS + CLAIMS && d.tlog?.checkpointSize() === d.tlog?.size())
    await sleep(SETTLE_MS)
    while (!complete() && Date.now() - settleFrom < RELEASE_SETTLE_MAX_MS) await sleep(1000)
    const settledMs = Date.now() - settleFrom
    const releaseTo = snapshot(daemons)
    const releaseLoop = loop.percentile(99) / 1e6
    loop.disable()
    const release = rates(releaseFrom, releaseTo, peers)
    const uniquePer = peers.map(p => arrivalsOf(p).unique?.size ?? 0)
    for (const p of peers) arrivalsOf(p).unique = undefined

    const latencies: number[] = []
    const toAll: number[] = []
    for (const a of published) {
      const at = stored.get(a.id) ?? new Map<number, number>()
      const ls = [...at].filter(([i]) => i !== a.from).map(([, t]) => t - a.at)
      latencies.push(...ls)
      toAll.push(at.size >= n ? Math.max(...ls) : Number.POSITIVE_INFINITY)
    }
    const wStats = daemons.map(d => d.stats().tlog?.witness)
    // On each node's newest checkpoint pushed to its witnesses (a newer one may wait for the push budget).
    const cosigs = daemons.map((d, i) => {
      const note = d.tlog?.checkpoints().find(c => c.size === wStats[i]?.pushedSize)?.note
      return note === undefined ? 0 : Math.max(0, parseNote(note).signatures.length - 1)
    })
    const perLog = (f: (s: NonNullable<typeof wStats[number]>) => number): number => round(mean(wStats.map((s, i) => s === undefined ? 0 : f(s) - (before[i] === undefined ? 0 : f(before[i]!)))), 2)
    const point: Point = {
      n,
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
        entriesPerLog: round(mean(daemons.map((d, i) => (d.tlog?.size() ?? 0) - sizesBefore[i]!)), 1),
        checkpointEntriesPerLog: round(mean(daemons.map((d, i) => (d.tlog?.checkpointSize() ?? 0) - sizesBefore[i]!)), 1),
        settledMs,
        complete: complete()
      },
      loopDelayP99Ms: { idle: round(idleLoop, 0), release: round(releaseLoop, 0) },
      announcement: { p50Ms: round(quantile(latencies, 0.5), 0), p99Ms: round(quantile(latencies, 0.99), 0), toAllMaxMs: round(Math.max(...toAll), 0), samples: latencies.length },
      cosignatures: { mean: round(mean(cosigs), 2), min: Math.min(...cosigs), max: Math.max(...cosigs) },
      witnessing: {
        sampledLogsMean: round(mean(wStats.map(s => s?.sampled ?? 0)), 1),
        candidatesMean: round(mean(wStats.map(s => s?.candidates ?? 0)), 1),
        underWitnessed: daemons.filter(d => (d.stats().tlog?.witness.underWitnessed ?? []).some(u => u.logKeyId === d.keyId)).length,
        witnessesPerLog: wStats[0]?.witnessesPerLog ?? 0,
        // Logs whose newest checkpoint still waits for the push budget when the window ends.
        waitingAtEnd: wStats.filter(s => s?.waitingSize !== undefined).length
      }
    }
    process.stderr.write(`N=${n}: ${JSON.stringify(point)}\n`)
    return point
  } finally {
    await Promise.all(daemons.map(async d => { await d.stop().catch(() => {}) }))
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
  await countGossip()
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
    process.stdout.write(`N=${p.n}: idle ${p.idle.messagesPerSecond} msg/s (gossip max ${p.idle.maxGossipPerSecond}), ${p.idle.bytesPerSecond} B/s; release ${p.release.messagesPerSecond} msg/s (${p.release.gossipPerSecond} gossip, ${p.release.witnessExchangesPerSecond} witness exchanges), ${p.release.bytesPerSecond} B/s, ${p.release.uniquePerNode} unique gossip messages and ${p.release.witnessExchangesPerNode} witness exchanges per node for ${p.release.releaseMessages} published; announcement p50 ${p.announcement.p50Ms} ms p99 ${p.announcement.p99Ms} ms; cosignatures per checkpoint ${p.cosignatures.mean} (min ${p.cosignatures.min}); event-loop delay p99 ${p.loopDelayP99Ms.idle} ms idle, ${p.loopDelayP99Ms.release} ms release\n`)
  }
  const idleMessages = model('idle messages/s per node', points.map(p => p.idle.messagesPerSecond))
  const idleBytes = model('idle bytes/s per node', points.map(p => p.idle.bytesPerSecond))
  const releaseMessages = model('release messages/s per node', points.map(p => p.release.messagesPerSecond))
  const releaseBytes = model('release bytes/s per node', points.map(p => p.release.bytesPerSecond))
  const releaseUnique = model('release unique gossip messages per node', points.map(p => p.release.uniquePerNode), true)
  const releaseExchanges = model('release witness exchanges per node', points.map(p => p.release.witnessExchangesPerNode))
  const upper = (m: Record<string, unknown>, x: number): number => ((m.at as Record<string, { upper: number }>)[String(x)]!).upper
  const largest = points.find(p => p.n === 100) ?? points[points.length - 1]!
  const checks = {
    idleMeasured: points.every(p => p.idle.messagesPerSecond <= BUDGET.messagesPerSecond && p.idle.bytesPerSecond <= BUDGET.bytesPerSecond),
    idleExtrapolated: EXTRAPOLATE.every(x => upper(idleMessages, x) <= BUDGET.messagesPerSecond && upper(idleBytes, x) <= BUDGET.bytesPerSecond),
    // Each node receives each of the release's messages once (copies aside, which the rates count)...
    releaseComplete: points.every(p => p.release.complete),
    releaseGossipOnlyItsMessages: points.every(p => p.release.uniquePerNode <= p.release.releaseMessages) && EXTRAPOLATE.every(x => upper(releaseUnique, x) <= largest.release.releaseMessages),
    // ...and witnesses them for at most one exchange each, besides the round the budget held from idle time.
    releaseWitnessingWithinItsMessages: points.every(p => p.release.witnessExchangesPerNode <= p.release.releaseMessages + 2 * p.witnessing.witnessesPerLog) && EXTRAPOLATE.every(x => upper(releaseExchanges, x) <= largest.release.releaseMessages + 2 * largest.witnessing.witnessesPerLog),
    propagationP99: largest.announcement.p99Ms <= TARGET_P99_MS
  }
  process.stdout.write(JSON.stringify({
    bench: 'scale',
    idleSeconds: IDLE_S,
    checkpointIntervalMs: CHECKPOINT_MS ?? 'default (1000)',
    timeScale: TIME_SCALE,
    points,
    model: { idleMessages, idleBytes, releaseMessages, releaseBytes, releaseUnique, releaseExchanges },
    target: { idleMessagesPerSecond: BUDGET.messagesPerSecond, idleBytesPerSecond: BUDGET.bytesPerSecond, releasePerNode: 'unique gossip messages at most its announcements and claims; witness exchanges at most those plus one round (2w)', announcementP99Ms: TARGET_P99_MS, at: largest.n },
    checks,
    met: Object.values(checks).every(Boolean)
  }) + '\n')
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
