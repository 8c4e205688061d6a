/**
 * Gossip benchmark: a 20-node loopback network in one process, each node verifying every
 * claim in full (decodeMessage) in its gossip validator.
 *
 * Measures
 *  - latency for a claim to reach every node (p50, p99) over claims published at a modest
 *    rate from random nodes;
 *  - validator throughput (claims ingested per second by one node) against the raw
 *    `crypto.verify` rate of the same PAE bytes, measured in the same run: once in isolation
 *    on the bytes a node received, and once as the time spent inside each node's validator
 *    during the network run (all nodes share this process's cores, so wall-clock rates per
 *    node would only measure the sharing). In the network each validator call also times a
 *    bare crypto.verify of the same message (the two in alternating order), so that ratio
 *    compares work done in the same state of the CPU caches. Nodes check signatures
 *    through libsodium (src/protocol/ed25519.ts); the isolated run also times a bare check
 *    through it, to show what decoding costs on top of the signature check itself.
 *
 * The rate is modest on purpose: here one process verifies every claim 19 times, where a
 * real network spreads that over 20 machines; the CPU share and event-loop delay printed
 * with the results show whether the run was starved (by the rate or by other load).
 *
 * Targets: p99 < 250 ms; ingest >= 0.8 of raw verify.
 * Environment: BENCH_NODES (20), BENCH_CLAIMS (200), BENCH_RATE (claims/s, 5),
 * BENCH_HEARTBEAT_MS (700, the production default), BENCH_SEED (1).
 */
import { createHash, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { cpus, loadavg } from 'node:os'
import { createP2PNode, DEFAULT_HEARTBEAT_MS, TOPICS } from '../src/node/p2p/index.js'
import type { P2PNode } from '../src/node/p2p/index.js'
import { createLogger } from '../src/node/logger.js'
import { decodeMessage, signClaim } from '../src/protocol/messages.js'
import { generateIdentity } from '../src/protocol/keys.js'
import type { SigningIdentity } from '../src/protocol/keys.js'
import { pae } from '../src/protocol/dsse.js'
import { verifyEd25519 } from '../src/protocol/ed25519.js'
import type { Envelope } from '../src/protocol/dsse.js'
import { sampleClaim } from './claims.js'
import { prng } from './prng.js'

// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug).
const logger = createLogger({ defaultLevel: 'warn' })

const NODES = Number(process.env.BENCH_NODES ?? 20)
const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 200)
const RATE = Number(process.env.BENCH_RATE ?? 5)
const HEARTBEAT_MS = Number(process.env.BENCH_HEARTBEAT_MS ?? DEFAULT_HEARTBEAT_MS)
const SEED = Number(process.env.BENCH_SEED ?? 1)
const EXTRA_DIALS = 2
const TARGET_P99_MS = 250
const TARGET_INGEST_RATIO = 0.8

const random = prng(SEED)
const pick = (n: number): number => Math.floor(random() * n)

function quantile (sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const idx = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)
  return sorted[Math.max(0, idx)]!
}

const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function waitFor (what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

interface BenchNode {
  node: P2PNode
  identity: SigningIdentity
  /** Time inside the validator, ms, and how many messages it judged. */
  validateMs: number
  /** Time of a bare crypto.verify of the same messages inside the validator, ms. */
  rawMs: number
  validated: number
  rejected: number
  /** id -> arrival time (performance.now()). */
  arrivals: Map<string, number>
  /** Raw bytes received, for the isolated measurement. */
  received: Uint8Array[]
}

async function main (): Promise<void> {
  const identities = Array.from({ length: NODES }, () => generateIdentity())
  const keys = new Map<string, KeyObject>(identities.map(i => [i.keyId, i.publicKey]))
  const idOf = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

  const nodes: BenchNode[] = []
  const rawParts = (data: Uint8Array): { pae: Uint8Array, sig: Buffer, key: KeyObject } => {
    const env = JSON.parse(new TextDecoder().decode(data)) as Envelope
    const sig = env.signatures[0]!
    return { pae: pae(env.payloadType, Buffer.from(env.payload, 'base64')), sig: Buffer.from(sig.sig, 'base64'), key: keys.get(sig.keyid ?? '')! }
  }
  for (const identity of identities) {
    const b: BenchNode = { node: undefined as unknown as P2PNode, identity, validateMs: 0, rawMs: 0, validated: 0, rejected: 0, arrivals: new Map(), received: [] }
    const rawVerify = (data: Uint8Array): void => {
      const r = rawParts(data) // untimed: only the signature check is the baseline
      const t0 = performance.now()
      if (!verify(null, r.pae, r.key, r.sig)) throw new Error('raw verify failed')
      b.rawMs += performance.now() - t0
    }
    b.node = await createP2PNode({
      logger,
      privateKey: identity.privateKey,
      validate: (_topic, data) => {
        const rawFirst = b.validated % 2 === 0
        if (rawFirst) rawVerify(data)
        const t0 = performance.now()
        try {
          decodeMessage(data, { keys })
          return 'accept'
        } catch {
          b.rejected++
          return 'reject'
        } finally {
          b.validateMs += performance.now() - t0
          b.validated++
          if (!rawFirst) rawVerify(data)
        }
      },
      onMessage: (_topic, data) => {
        b.arrivals.set(idOf(data), performance.now())
        b.received.push(data)
      },
      backfillSource: async ({ cursor }) => ({ items: [], next: cursor })
    }, { listen: ['/ip4/127.0.0.1/tcp/0'], gossip: { heartbeatIntervalMs: HEARTBEAT_MS } })
    await b.node.start()
    nodes.push(b)
  }

  // Random sparse connected topology: a random tree (each node dials an earlier one) plus
  // a few random extra dials per node.
  const edges = new Set<string>()
  const addEdge = (i: number, j: number): void => { if (i !== j) edges.add(i < j ? `${i}-${j}` : `${j}-${i}`) }
  for (let i = 1; i < NODES; i++) addEdge(i, pick(i))
  for (let i = 0; i < NODES; i++) for (let k = 0; k < EXTRA_DIALS; k++) if (random() < 0.5) addEdge(i, pick(NODES))
  const pairs = [...edges].map(e => e.split('-').map(Number) as [number, number])
  for (const [i, j] of pairs) await nodes[i]!.node.dial(nodes[j]!.node.multiaddrs()[0]!)
  const degree = nodes.map((_, k) => pairs.filter(([i, j]) => i === k || j === k).length)
  await waitFor('gossip meshes', () => nodes.every((n, k) => (n.node.stats().mesh[TOPICS.claims] ?? 0) >= Math.min(degree[k]!, 4)), 60_000)
  await sleep(HEARTBEAT_MS * 2)

  // Sign everything first: signing is the publisher's cost, not the network's.
  const envelopes: Envelope[] = []
  const publishers: number[] = []
  for (let i = 0; i < CLAIMS; i++) {
    const p = pick(NODES)
    publishers.push(p)
    envelopes.push(signClaim(sampleClaim(i), identities[p]!))
  }
  const datas = envelopes.map(e => new TextEncoder().encode(JSON.stringify(e)))
  const ids = datas.map(idOf)

  // Network run.
  // Event-loop delay and CPU share tell whether the process was starved by other load.
  const eld = monitorEventLoopDelay({ resolution: 10 })
  eld.enable()
  const cpu0 = process.cpuUsage()
  const sentAt = new Map<string, number>()
  const interval = 1000 / RATE
  const start = performance.now()
  for (let i = 0; i < CLAIMS; i++) {
    const due = start + i * interval
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    sentAt.set(ids[i]!, performance.now())
    await nodes[publishers[i]!]!.node.publish(TOPICS.claims, datas[i]!)
  }
  await waitFor('every claim at every node', () => nodes.every((n, k) =>
    ids.every((id, i) => publishers[i] === k || n.arrivals.has(id))), 60_000).catch((err: Error) => { console.error(err.message) })

  eld.disable()
  const cpu = process.cpuUsage(cpu0)
  const runWallS = (performance.now() - start) / 1000
  const cpuShare = (cpu.user + cpu.system) / 1e6 / runWallS
  const latencies: number[] = []
  let missing = 0
  for (const [i, id] of ids.entries()) {
    let last = 0
    for (const [k, n] of nodes.entries()) {
      if (publishers[i] === k) continue
      const t = n.arrivals.get(id)
      if (t == null) { missing++; continue }
      last = Math.max(last, t - sentAt.get(id)!)
    }
    latencies.push(last)
  }
  latencies.sort((a, b) => a - b)

  // In-network validator throughput: claims per second of validator time, per node.
  const inNetwork = nodes.filter(n => n.validated > 0).map(n => n.validated / (n.validateMs / 1000))
  const inNetworkRatios = nodes.filter(n => n.validated > 0).map(n => n.rawMs / n.validateMs)
  const rejected = nodes.reduce((s, n) => s + n.rejected, 0)

  await Promise.all(nodes.map(async n => { await n.node.stop() }))

  // Isolated: the validator path on the bytes one node received, against crypto.verify of
  // the same PAE bytes with the same keys, interleaved so both see the same machine state.
  const sample = nodes[0]!.received.length > 0 ? nodes[0]!.received : datas
  const raw = sample.map(rawParts)
  const timeRaw = (): number => {
    const t0 = performance.now()
    for (const r of raw) if (!verify(null, r.pae, r.key, r.sig)) throw new Error('raw verify failed')
    return raw.length / ((performance.now() - t0) / 1000)
  }
  const timeSodium = (): number => {
    const t0 = performance.now()
    for (const r of raw) if (!verifyEd25519(r.pae, r.sig, r.key)) throw new Error('raw libsodium verify failed')
    return raw.length / ((performance.now() - t0) / 1000)
  }
  const timeDecode = (): number => {
    const t0 = performance.now()
    for (const d of sample) decodeMessage(d, { keys })
    return sample.length / ((performance.now() - t0) / 1000)
  }
  for (let i = 0; i < 3; i++) { timeRaw(); timeSodium(); timeDecode() }
  const rawRates: number[] = []
  const sodiumRates: number[] = []
  const decodeRates: number[] = []
  for (let i = 0; i < 15; i++) { rawRates.push(timeRaw()); sodiumRates.push(timeSodium()); decodeRates.push(timeDecode()) }
  const rawRate = median(rawRates)
  const sodiumRate = median(sodiumRates)
  const isolated = median(decodeRates)
  const inNetworkMedian = median(inNetwork)

  const p50 = quantile(latencies, 0.5)
  const p99 = quantile(latencies, 0.99)
  const ratioIsolated = isolated / rawRate
  const ratioNetwork = inNetworkMedian / rawRate
  const ratioNetworkSameState = median(inNetworkRatios)
  const meanBytes = Math.round(datas.reduce((s, d) => s + d.byteLength, 0) / datas.length)

  const fmt = (n: number, d = 1): string => n.toFixed(d)
  console.log(`gossip benchmark: ${NODES} nodes, ${pairs.length} links (degree ${Math.min(...degree)}..${Math.max(...degree)}), ${CLAIMS} signed claims (${meanBytes} B each) at ${RATE}/s, heartbeat ${HEARTBEAT_MS} ms`)
  console.log(`latency to every node: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms, max ${fmt(latencies.at(-1) ?? Number.NaN)} ms; missing deliveries ${missing}; rejected ${rejected}`)
  console.log(`machine: ${cpus().length} cores, load average ${loadavg().map(l => fmt(l, 2)).join(' ')}; during the run this process used ${fmt(cpuShare * 100, 0)}% of a core, event-loop delay p50 ${fmt(eld.percentile(50) / 1e6)} ms, max ${fmt(eld.max / 1e6)} ms`)
  // What the simulation asks of this one process: every claim verified by NODES-1 validators.
  const validationDemand = RATE * (NODES - 1) / isolated
  console.log(`simulation load: validation alone needs ${fmt(validationDemand * 100, 0)}% of a core at ${RATE} claims/s (${NODES - 1} validators per claim in one process)`)
  console.log(`raw crypto.verify of the PAE bytes:        ${fmt(rawRate, 0)} /s`)
  console.log(`raw libsodium verify (what nodes use):     ${fmt(sodiumRate, 0)} /s`)
  console.log(`validator (decodeMessage), isolated:       ${fmt(isolated, 0)} claims/s  ratio ${fmt(ratioIsolated, 3)}; to libsodium ${fmt(isolated / sodiumRate, 3)}`)
  console.log(`validator time per node in the network:    ${fmt(inNetworkMedian, 0)} claims/s  ratio ${fmt(ratioNetwork, 3)} (median of ${inNetwork.length} nodes)`)
  console.log(`  against raw verify inside the same calls:                  ratio ${fmt(ratioNetworkSameState, 3)} (median of ${inNetworkRatios.length} nodes)`)
  const p99ok = p99 < TARGET_P99_MS && missing === 0
  const ingestOk = ratioIsolated >= TARGET_INGEST_RATIO
  console.log(`targets: p99 < ${TARGET_P99_MS} ms: ${p99ok ? 'yes' : 'NO'}; ingest >= ${TARGET_INGEST_RATIO} x raw: ${ingestOk ? 'yes' : 'NO'}`)
  console.log(JSON.stringify({ bench: 'gossip', nodes: NODES, links: pairs.length, claims: CLAIMS, rate: RATE, heartbeatMs: HEARTBEAT_MS, p50Ms: p50, p99Ms: p99, missing, rawVerifyPerSec: rawRate, libsodiumVerifyPerSec: sodiumRate, ingestIsolatedPerSec: isolated, ingestInNetworkPerSec: inNetworkMedian, ratioIsolated, ratioNetwork, ratioNetworkSameState, p99ok, ingestOk, loadavg: loadavg(), cpuShare, eventLoopDelayP50Ms: eld.percentile(50) / 1e6, eventLoopDelayMaxMs: eld.max / 1e6, validationDemand }))
}

await main()
