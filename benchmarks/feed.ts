/**
 * Feed benchmark (`npm run bench:feed`).
 *
 * 1. Throughput of the feed server's `/api/v1/claims` and `/feed.json` under autocannon, against
 *    a plain `node:http` server that answers with the same bytes from memory (the ceiling for
 *    this machine), same duration and connections, same run. Target: ratio >= 0.5.
 * 2. A level store of 100,000 real signed claims over thousands of releases, and the p50/p99
 *    latency of consensus for random tags. Target: p99 < 10 ms.
 *
 * The store lives on /dev/shm when there is one: LevelDB syncs every write, and seeding
 * 100,000 synced writes on a disk only measures the disk. Queries read from memory either way.
 *
 * Environment: BENCH_CLAIMS (default 100000), BENCH_DURATION seconds per load run (default 5),
 * BENCH_CONNECTIONS (default 10), BENCH_QUERIES (default 2000).
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import autocannon from 'autocannon'
import type { Announcement, Claim } from '../src/protocol/types.js'
import type { Envelope } from '../src/protocol/dsse.js'
import { createIngest, type Ingest } from '../src/node/ingest/index.js'
import { generateIdentity, type SigningIdentity } from '../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { consensusForTag, createConsensusService } from '../src/node/consensus/service.js'
import { createFeedServer } from '../src/node/http/server.js'
import { createLogger } from '../src/node/logger.js'
import { createStore } from '../src/node/store/level-store.js'
import { claim as makeClaim, imageResult, RECIPE } from '../test/http/fixtures.js'

// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug).
const logger = createLogger({ defaultLevel: 'warn' })

const CLAIMS = Number(process.env.BENCH_CLAIMS ?? 100_000)
const DURATION = Number(process.env.BENCH_DURATION ?? 5)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10)
const QUERIES = Number(process.env.BENCH_QUERIES ?? 2000)
const REPO = 'https://github.com/m1k1o/neko'
const TARGETS: Array<[string, string]> = [['base', 'linux/amd64'], ['base', 'linux/arm64'], ['app', 'linux/amd64'], ['app', 'linux/arm64'], ['nvidia', 'linux/amd64']]
const BUILDERS = 5
const CLAIMS_PER_RELEASE = TARGETS.length * BUILDERS

function commitOf (i: number): string {
  return i.toString(16).padStart(40, '0')
}

function percentile (sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

function ms (n: number): string {
  return `${n.toFixed(3)} ms`
}

/** Announcements and claims of `releases` releases, each claim its own signed envelope. */
async function seed (ingest: Ingest, maintainer: SigningIdentity, builders: SigningIdentity[], releases: number): Promise<void> {
  const started = performance.now()
  let batch: Envelope[] = []
  let stored = 0
  // Through the node's ingest, as a node stores what it receives: verified in batches, then stored.
  const flush = async (): Promise<void> => { await ingest.recordMany(batch); batch = [] }
  for (let r = 0; r < releases; r++) {
    const tag = `v${Math.floor(r / 100)}.${r % 100}.0`
    const commit = commitOf(r + 1)
    const a: Announcement = { repository: REPO, tag, commit, recipe: RECIPE, targets: TARGETS.map(([variant, platform]) => ({ variant, platform })), announcedAt: new Date(Date.UTC(2026, 0, 1) + r * 60_000).toISOString() }
    const ae = signAnnouncement(a, maintainer)
    batch.push(ae)
    for (const [variant, platform] of TARGETS) {
      const agreed = imageResult(`${tag} ${variant} ${platform}`, ['base', 'deps', variant])
      builders.forEach((b, i) => {
        // One release in ten has a builder that gets a different last layer.
        const result = i === BUILDERS - 1 && r % 10 === 0 ? imageResult(`${tag} ${variant} ${platform} drift`, ['base', 'deps', `${variant} drift`]) : agreed
        const c: Claim = makeClaim({ repository: REPO, commit, variant, platform, tag }, { result })
        const env = signClaim(c, b)
        batch.push(env)
        stored++
      })
    }
    if (batch.length >= 500) await flush()
    if (r % 500 === 499) process.stdout.write(`  seeded ${stored} claims (${((performance.now() - started) / 1000).toFixed(1)} s)\n`)
  }
  await flush()
  process.stdout.write(`  seeded ${stored} signed claims and ${releases} announcements in ${((performance.now() - started) / 1000).toFixed(1)} s\n`)
}

async function load (url: string): Promise<autocannon.Result> {
  // A short warm-up first, so neither side is measured while its code is still being compiled.
  await autocannon({ url, connections: CONNECTIONS, duration: 1, pipelining: 1 })
  return await autocannon({ url, connections: CONNECTIONS, duration: DURATION, pipelining: 1 })
}

/** A server answering with fixed bytes: what serving this response can cost at best. */
async function staticServer (routes: Map<string, { body: Buffer, contentType: string }>): Promise<{ url: string, close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const r = routes.get(req.url ?? '')
    if (r === undefined) { res.statusCode = 404; res.end(); return }
    res.setHeader('Content-Type', r.contentType)
    res.setHeader('Content-Length', r.body.length)
    res.end(r.body)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) } }
}

function load1 (): string {
  return `load average ${loadavg().map(n => n.toFixed(2)).join(' ')} on this machine`
}

async function main (): Promise<void> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  const dir = await mkdtemp(join(base, 'neko-bench-feed-'))
  try {
    const maintainer = generateIdentity()
    const builders = Array.from({ length: BUILDERS }, () => generateIdentity())
    const policy = parsePolicy({
      version: 1,
      builders: builders.map((b, i) => ({ name: `b${i}`, operator: `op${i}`, publicKey: b.publicKeyPem })),
      announcers: [{ name: 'maintainer', publicKey: maintainer.publicKeyPem }],
      threshold: 3,
      minOperators: 3,
      allowedDissent: 1
    })
    const releases = Math.max(1, Math.round(CLAIMS / CLAIMS_PER_RELEASE))
    process.stdout.write(`store: ${releases * CLAIMS_PER_RELEASE} claims, ${releases} releases × ${TARGETS.length} targets × ${BUILDERS} builders, in ${dir}\n`)
    const store = await createStore({ logger }, { path: join(dir, 'store') })
    const ingest = createIngest({ store, policy, logger })
    await seed(ingest, maintainer, builders, releases)
    const tags = Array.from({ length: releases }, (_, r) => `v${Math.floor(r / 100)}.${r % 100}.0`)

    // ---- 1. consensus latency
    // Let LevelDB finish compacting what the seeding wrote before timing reads.
    await new Promise(resolve => setTimeout(resolve, 5000))
    const pick = (): string => tags[Math.floor(Math.random() * tags.length)]!
    const measure = async (label: string, fn: (tag: string) => Promise<unknown>, n: number, order?: string[]): Promise<void> => {
      const times: number[] = []
      const cpu: number[] = []
      for (let i = 0; i < n; i++) {
        const tag = order?.[i] ?? pick()
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        const c = await fn(tag)
        times.push(performance.now() - t0)
        const used = process.cpuUsage(c0)
        cpu.push((used.user + used.system) / 1000)
        if (c === undefined) throw new Error(`no consensus for ${tag}`)
      }
      times.sort((a, b) => a - b)
      cpu.sort((a, b) => a - b)
      process.stdout.write(`  ${label.padEnd(58)} p50 ${ms(percentile(times, 0.5))} · p99 ${ms(percentile(times, 0.99))} · max ${ms(times[times.length - 1]!)} (n=${n})\n`)
      // CPU time of this process per query: what the wall time would be on an idle machine.
      process.stdout.write(`  ${''.padEnd(58)} cpu p50 ${ms(percentile(cpu, 0.5))} · cpu p99 ${ms(percentile(cpu, 0.99))}\n`)
    }
    process.stdout.write(`\n${load1()}\n`)
    process.stdout.write(`\nconsensus over ${releases * CLAIMS_PER_RELEASE} claims, random tags (target p99 < 10 ms)\n`)
    // Warm-up: compile the hot paths before timing them.
    for (let i = 0; i < 200; i++) await consensusForTag(store, policy, pick(), { repository: REPO })
    await measure('consensusForTag(tag, { repository }): index reads, no cache', async tag => await consensusForTag(store, policy, tag, { repository: REPO }), QUERIES)
    const service = createConsensusService({ store, policy })
    const t0 = performance.now()
    await service.forTag(tags[0]!)
    process.stdout.write(`  service start (tag index of ${releases} announcements): ${ms(performance.now() - t0)}\n`)
    const cold = [...tags].sort(() => Math.random() - 0.5).slice(0, Math.min(QUERIES, tags.length))
    await measure('service.forTag(tag), first ask of each tag (cache miss)', async tag => await service.forTag(tag), cold.length, cold)
    // Within the service's cache size, so every ask is a hit.
    const warm = cold.slice(0, 500)
    await measure('service.forTag(tag), asked before (cache hit)', async tag => await service.forTag(tag), QUERIES, Array.from({ length: QUERIES }, (_, i) => warm[i % warm.length]!))
    // ---- 2. HTTP throughput
    const server = createFeedServer({ logger, store, policy }, { host: '127.0.0.1', port: 0 })
    const { url } = await server.start()
    const paths = ['/api/v1/claims?limit=100&cursor=5000', '/feed.json']
    const bodies = new Map<string, { body: Buffer, contentType: string }>()
    for (const p of paths) {
      const res = await fetch(url + p)
      bodies.set(p, { body: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type') ?? 'application/json' })
    }
    const plain = await staticServer(bodies)
    process.stdout.write(`\nHTTP: autocannon, ${CONNECTIONS} connections, 2 rounds of ${DURATION} s per side (after 1 s warm-up), loopback\n`)
    for (const p of paths) {
      // Two alternating rounds, so a burst of load elsewhere on the machine hits both sides alike.
      let oursTotal = 0
      let baseTotal = 0
      let p99 = 0
      for (let round = 0; round < 2; round++) {
        const baseline = await load(plain.url + p)
        const ours = await load(url + p)
        if (ours.non2xx > 0 || ours.errors > 0) throw new Error(`${p}: ${ours.non2xx} non-2xx answers, ${ours.errors} errors`)
        baseTotal += baseline.requests.average
        oursTotal += ours.requests.average
        p99 = Math.max(p99, ours.latency.p99)
      }
      const ratio = oursTotal / baseTotal
      process.stdout.write(`  ${p.padEnd(38)} feed server ${(oursTotal / 2).toFixed(0).padStart(7)} req/s (p99 ${p99} ms) · plain node:http ${(baseTotal / 2).toFixed(0).padStart(7)} req/s · ratio ${ratio.toFixed(2)} (target >= 0.5) · ${bodies.get(p)!.body.length} bytes\n`)
    }
    await plain.close()
    await server.stop()
    process.stdout.write(`\n${load1()}\n`)

    await store.close()
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
