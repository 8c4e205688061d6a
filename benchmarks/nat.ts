/**
 * NAT benchmark (docs/volunteers.md, docs/network.md#reachability-behind-nats).
 *
 * 1. Real NATs (as root, in network namespaces; test/p2p/nat-scenario.ts): a public node
 *    (bootstrap and relay) and two `join` processes, one behind a port-restricted cone NAT
 *    and one behind a symmetric NAT. Per NAT type: time from start to the first gossip
 *    connection (the bootstrap), to relayed reachability (a relay slot held and advertised)
 *    and to a direct connection between the two (none is expected over TCP without a port
 *    mapping); the latency of a claim gossiped from behind one NAT to the other; the time
 *    until each witnessed the other's log over the relay. Baseline, same run: the time the
 *    same processes took to connect to the bootstrap; target: relayed reachability at most
 *    30 s after that connection.
 * 2. A free tunnel (loopback, real libp2p nodes): a peer pulls back-fill pages as fast as it
 *    can from a peer reached only through a relay with the default limits, re-opening the
 *    circuit each time the relay drops it, for BENCH_TUNNEL_S (15) seconds. Baseline, same
 *    run: the same pulls over a direct connection. Target: no circuit carried more than its
 *    byte limit, the relay refused circuits beyond the request rate, and the tunnel got at
 *    most the rate's worth of bytes (requestBurst + requestsPerMinute x minutes circuits of
 *    maxCircuitBytes each).
 *
 *    A third `join` sits behind a router running miniupnpd: the time until its mapped address
 *    is confirmed, and until the symmetric-NAT node has a direct connection to it. A fourth, on
 *    a public address and knowing only the port-restricted node's relayed address: the time
 *    from its start until its relayed connection to that node was replaced by a direct one. Bytes
 *    relayed per release: what the NATed nodes' relayed connections carried over the whole
 *    scenario (one release: its announcement, claims, divergence reports with the file
 *    manifests behind them, witnessing and back-fill), counted against the relay's byte
 *    limit at both ends of each circuit and halved.
 *
 * The last line is one JSON object with the figures, the targets and `met`.
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { createP2PNode, RELAY_DEFAULTS, type P2PNode } from '../src/node/p2p/index.js'
import { generateIdentity } from '../src/protocol/keys.js'

const TUNNEL_S = Number(process.env.BENCH_TUNNEL_S ?? 15)
const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
const ITEM = Buffer.alloc(1024 * 1024 - 1024, 1)
const SCENARIO = join(import.meta.dirname, '../test/p2p/nat-scenario.ts')

interface Side { nat: string, bootstrapMs: number | null, relayedMs: number, directMs?: number | null, storedOtherMs: number, provedOtherMs: number, cosignedByOtherMs: number }
interface Scenario {
  h1: Side
  h2: Side
  h3: { mappedMs: number, directWithSymmetricMs: number }
  h4: { upgradedMs: number }
  pub: { publicMs: number }
  relayedBytes: { h1: number, h2: number, h3: number, h4: number, total: number }
}

async function natScenario (): Promise<Scenario | { skipped: string }> {
  return await new Promise(resolve => {
    execFile('unshare', ['--net', '--mount', '--', process.execPath, '--import', 'tsx', SCENARIO], { timeout: 400_000, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NAT_SCENARIO_TIMEOUT_MS: '150000' } }, (err, stdout, stderr) => {
      const last = stdout.trim().split('\n').at(-1)
      try {
        const r = JSON.parse(last ?? '') as { error?: string }
        if (r.error != null) resolve({ skipped: `the scenario failed: ${r.error}` })
        else resolve(r as Scenario)
      } catch {
        resolve({ skipped: err != null ? `cannot run the NAT scenario (needs root, unshare, ip, iptables, miniupnpd): ${err.message.split('\n')[0] ?? ''} ${stderr.slice(-200)}` : 'no result' })
      }
    })
  })
}

async function node (init: Parameters<typeof createP2PNode>[1]): Promise<P2PNode> {
  const n = await createP2PNode({
    privateKey: generateIdentity().privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    // Every page is as large as the exchange allows: 7 items of almost 1 MiB.
    backfillSource: async ({ cursor }) => ({ items: Array.from({ length: 7 }, () => ITEM), next: cursor + 7 })
  }, { mdns: false, backfill: { maxItemBytes: 1024 * 1024, maxItems: 7 }, ...init })
  await n.start()
  return n
}

async function pull (client: P2PNode, target: string, seconds: number): Promise<{ bytes: number, perCircuit: number[], failures: number }> {
  const end = Date.now() + seconds * 1000
  let bytes = 0
  let current = 0
  const perCircuit: number[] = []
  let failures = 0
  while (Date.now() < end) {
    try {
      const page = await client.backfill(target, 0, 7)
      const n = page.items.reduce((s, i) => s + i.byteLength, 0)
      bytes += n
      current += n
    } catch {
      // The relay dropped the circuit (byte or time limit) or refused a new one (rate).
      failures++
      if (current > 0) perCircuit.push(current)
      current = 0
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  if (current > 0) perCircuit.push(current)
  return { bytes, perCircuit, failures }
}

async function tunnel (): Promise<Record<string, unknown>> {
  const relay = await node({ listen: [LOOPBACK], nat: { relayServer: 'on', dht: false } })
  const exit = await node({ listen: [LOOPBACK], bootstrap: [relay.multiaddrs()[0]!], nat: { relays: 1, dht: false } })
  const abuser = await node({ listen: [LOOPBACK], nat: { dht: false } })
  try {
    const deadline = Date.now() + 20_000
    let circuit: string | undefined
    while ((circuit = exit.stats().reachability.addresses.find(a => a.includes('/p2p-circuit/'))) === undefined) {
      if (Date.now() > deadline) throw new Error('no relay slot within 20 s')
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const direct = await pull(abuser, exit.multiaddrs()[0]!, 3)
    await abuser.stop()
    const tunneller = await node({ listen: [LOOPBACK], nat: { dht: false } })
    try {
      const relayed = await pull(tunneller, circuit, TUNNEL_S)
      const refused = relay.stats().relayRefused
      const allowedCircuits = RELAY_DEFAULTS.requestBurst + RELAY_DEFAULTS.requestsPerMinute * TUNNEL_S / 60
      return {
        seconds: TUNNEL_S,
        directBytesPerSecond: Math.round(direct.bytes / 3),
        tunnelBytesPerSecond: Math.round(relayed.bytes / TUNNEL_S),
        ratio: Number(((relayed.bytes / TUNNEL_S) / (direct.bytes / 3)).toFixed(4)),
        circuits: relayed.perCircuit.length,
        maxBytesPerCircuit: Math.max(0, ...relayed.perCircuit),
        maxCircuitBytes: RELAY_DEFAULTS.maxCircuitBytes,
        refusedByRate: refused.rate,
        maxTunnelBytes: Math.round(allowedCircuits * RELAY_DEFAULTS.maxCircuitBytes),
        tunnelBytes: relayed.bytes,
        met: Math.max(0, ...relayed.perCircuit) <= RELAY_DEFAULTS.maxCircuitBytes && relayed.bytes <= allowedCircuits * RELAY_DEFAULTS.maxCircuitBytes
      }
    } finally {
      await tunneller.stop()
    }
  } finally {
    await Promise.all([relay.stop(), exit.stop(), abuser.stop()])
  }
}

const t = await tunnel()
console.log(`free tunnel through a relay (${TUNNEL_S} s): ${t.tunnelBytes as number} bytes in ${t.circuits as number} circuits, at most ${t.maxBytesPerCircuit as number} bytes per circuit (limit ${t.maxCircuitBytes as number}), ${t.refusedByRate as number} circuits refused by rate; ${t.tunnelBytesPerSecond as number} B/s against ${t.directBytesPerSecond as number} B/s direct (ratio ${t.ratio as number})`)

const nat = await natScenario()
let natMet = false
let natFigures: Record<string, unknown>
if ('skipped' in nat) {
  console.log(`NAT scenario not run: ${nat.skipped}`)
  natFigures = { skipped: nat.skipped }
} else {
  const side = (s: Side): Record<string, unknown> => ({ firstGossipMs: s.bootstrapMs, relayedMs: s.relayedMs, relayedAfterBootstrapMs: s.bootstrapMs == null ? null : s.relayedMs - s.bootstrapMs, directMs: s.directMs ?? null, gossipLatencyMs: s.storedOtherMs, witnessedOtherMs: s.provedOtherMs, cosignedByOtherMs: s.cosignedByOtherMs })
  natFigures = {
    'port-restricted': { ...side(nat.h1), directFromPublicPeerMs: nat.h4.upgradedMs },
    symmetric: side(nat.h2),
    'port-mapped (UPnP)': { mappedMs: nat.h3.mappedMs, directFromSymmetricMs: nat.h3.directWithSymmetricMs },
    publicNodeConfirmedMs: nat.pub.publicMs,
    relayedBytesPerRelease: nat.relayedBytes.total,
    relayedBytesPerNode: { 'port-restricted': nat.relayedBytes.h1, symmetric: nat.relayedBytes.h2, 'port-mapped': nat.relayedBytes.h3, 'public peer': nat.relayedBytes.h4 }
  }
  for (const s of [nat.h1, nat.h2]) console.log(`${s.nat} NAT: first gossip connection ${s.bootstrapMs ?? '-'} ms, relayed reachability ${s.relayedMs} ms, direct connection ${s.directMs == null ? 'none' : `${s.directMs} ms`}, claim from the other NAT stored ${s.storedOtherMs} ms after it was published, other's log witnessed over the relay ${s.provedOtherMs} ms after start and its cosignature on this log ${s.cosignedByOtherMs} ms after start`)
  console.log(`port-restricted NAT: a public peer that reached it over the relay got a direct connection (DCUtR) ${nat.h4.upgradedMs} ms after that peer started`)
  console.log(`port-mapped (UPnP) NAT: mapped address confirmed ${nat.h3.mappedMs} ms after start, direct connection from the symmetric NAT ${nat.h3.directWithSymmetricMs} ms after start`)
  console.log(`bytes relayed for the release (announcement, 4 claims, 2 divergence reports with their file manifests, witnessing, back-fill, and the public peer's first contact before its upgrade): ${nat.relayedBytes.total}`)
  natMet = [nat.h1, nat.h2].every(s => s.bootstrapMs != null && s.relayedMs - s.bootstrapMs <= 30_000) && nat.h3.directWithSymmetricMs > 0 && nat.h4.upgradedMs > 0
}
console.log(JSON.stringify({
  benchmark: 'nat',
  tunnel: t,
  nat: natFigures,
  target: 'relayed reachability <= 30 s after the bootstrap connection for each NAT type; a direct connection to the port-mapped node and from a public peer that reached the port-restricted node over the relay; a relay carries no more than its byte limit per circuit and its request rate allows',
  met: t.met === true && natMet
}))
