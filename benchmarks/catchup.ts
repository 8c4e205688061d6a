/**
 * Catch-up benchmark (`npm run bench:catchup`).
 *
 * For each history size N (BENCH_CATCHUP_N, default "20000,100000"):
 * 1. The floor: N signed messages (releases of announcements and agreeing claims) decoded,
 *    verified and stored through the node's own ingest, page by page (`acceptPage`, 128 at a
 *    time), into an empty store. That store is then what the peers serve.
 * 2. A node with an empty store joins peers holding it (in a second process, as real peers
 *    are): from one peer, from three, and from two honest peers and one hostile one (it floods
 *    valid claims of keys outside the policy, claims to be a billion messages ahead, then
 *    stalls). Each run prints messages/s every 5 s, the ratio of its rate to the floor's, and
 *    the time from start to the first correct verdict for the newest release (the verdict the
 *    full store gives).
 *
 * The machine's load moves during a long run, so the floor is also measured on a sample
 * (BENCH_CATCHUP_FLOOR_SAMPLE, default 5,000 messages) just before and just after each run;
 * a run's ratio is to the mean of those two (its ratio to the first floor is printed too).
 *
 * Targets: every run's rate >= 0.5 of the floor next to it; first correct verdict within 60 s; with the
 * hostile peer, the honest rate >= 0.8 of the three-peer run's and the hostile peer's items
 * <= 1/4 of everything verified.
 *
 * Stores live on /dev/shm when there is one (LevelDB syncs every write; on a disk the figures
 * measure the disk), the floor's and the catching-up node's alike.
 */
import { existsSync } from 'node:fs'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDaemon } from '../src/node/daemon/index.js'
import { createIngest } from '../src/node/ingest/index.js'
import { createStore } from '../src/node/store/level-store.js'
import { generateIdentity } from '../src/protocol/keys.js'
import { parsePolicy } from '../src/protocol/policy.js'
import type { TargetVerdict } from '../src/protocol/quorum.js'
import { REPO } from '../test/http/fixtures.js'
import { makeHistory } from '../test/helpers/history.js'
import { storeVerdicts } from '../test/node/helpers.js'

const SIZES = (process.env.BENCH_CATCHUP_N ?? '20000,100000').split(',').map(Number)
const SAMPLE = Number(process.env.BENCH_CATCHUP_FLOOR_SAMPLE ?? 5000)
const PAGE = 128
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

function out (line: string): void { process.stdout.write(line + '\n') }

function same (a: TargetVerdict[], b: TargetVerdict[]): boolean {
  return JSON.stringify(a.map(v => [v.key, v.status, v.consensusDigest])) === JSON.stringify(b.map(v => [v.key, v.status, v.consensusDigest]))
}

/** Messages per second through the ingest into an empty store, page by page: the floor. */
async function floorRate (envelopes: string[], policy: ReturnType<typeof parsePolicy>, path: string): Promise<{ rate: number, store: Awaited<ReturnType<typeof createStore>> }> {
  const store = await createStore({}, { path })
  const ingest = createIngest({ store, policy })
  const items = envelopes.map(e => Buffer.from(e, 'utf8'))
  const t0 = performance.now()
  for (let i = 0; i < items.length; i += PAGE) await ingest.acceptPage(items.slice(i, i + PAGE))
  return { rate: items.length / ((performance.now() - t0) / 1000), store }
}

/** The floor again on a sample, next to a run: the machine's load moves during a long benchmark. */
async function floorNear (envelopes: string[], policy: ReturnType<typeof parsePolicy>, path: string): Promise<number> {
  const { rate, store } = await floorRate(envelopes.slice(0, SAMPLE), policy, path)
  await store.close()
  await rm(path, { recursive: true, force: true })
  return rate
}

interface Run { name: string, seconds: number, rate: number, ratio: number, ratioToFirstFloor: number, floorNear: number, firstVerdictSeconds: number | null, verified: number, skipped: number, series: number[] }

async function startPeers (config: { policy: unknown, stores: string[], hostile: boolean }): Promise<{ addrs: string[], stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'catchup-peers.ts'), JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const addrs = await new Promise<string[]>((resolve, reject) => {
    child.once('exit', code => { reject(new Error(`the peers' process exited with ${String(code)}`)) })
    lines.once('line', l => { resolve((JSON.parse(l) as { addrs: string[] }).addrs) })
  })
  return {
    addrs,
    stop: async () => {
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.stdin.end()
      await exited
    }
  }
}

async function main (): Promise<void> {
  const started = performance.now()
  const results: Array<{ n: number, floorRate: number, runs: Run[] }> = []
  for (const n of SIZES) {
    const dir = await mkdtemp(join(base, 'neko-bench-catchup-'))
    try {
      const t0 = performance.now()
      const history = makeHistory(n)
      const total = history.envelopes.length
      out(`\nN = ${total}: signed in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
      const policyJson = {
        version: 1,
        builders: history.builders.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
        announcers: [{ name: 'maintainer', publicKey: history.announcer.publicKeyPem }],
        threshold: history.builders.length,
        minOperators: history.builders.length,
        allowedDissent: 0
      }
      const policy = parsePolicy(policyJson)

      // ---- 1. The floor, which also fills the store the peers serve.
      const f0 = performance.now()
      const { rate: firstFloor, store: floorStore } = await floorRate(history.envelopes, policy, join(dir, 'peer-0'))
      const floorSeconds = (performance.now() - f0) / 1000
      if (floorStore.lastCursor() !== total) throw new Error(`the floor stored ${floorStore.lastCursor()} of ${total}`)
      const expected = await storeVerdicts(floorStore, policy, REPO, history.newest.commit)
      await floorStore.close()
      out(`floor: ${total} messages through the ingest in ${floorSeconds.toFixed(1)} s = ${firstFloor.toFixed(0)} messages/s`)
      await cp(join(dir, 'peer-0'), join(dir, 'peer-1'), { recursive: true })
      await cp(join(dir, 'peer-0'), join(dir, 'peer-2'), { recursive: true })

      // ---- 2. Catch-up runs.
      const runs: Run[] = []
      const plans: Array<{ name: string, stores: string[], hostile: boolean }> = [
        { name: 'one peer', stores: ['peer-0'], hostile: false },
        { name: 'three peers', stores: ['peer-0', 'peer-1', 'peer-2'], hostile: false },
        { name: 'two honest peers + one hostile', stores: ['peer-0', 'peer-1'], hostile: true }
      ]
      for (const [k, plan] of plans.entries()) {
        const before = await floorNear(history.envelopes, policy, join(dir, `floor-${k}`))
        const peers = await startPeers({ policy: policyJson, stores: plan.stores.map(s => join(dir, s)), hostile: plan.hostile })
        const store = await createStore({}, { path: join(dir, `client-${k}`) })
        const node = await createDaemon({ identity: generateIdentity(), store, policy }, { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: peers.addrs, mdns: false })
        // Done when every message of the history is stored (a hostile peer's extra claims do not count).
        let held = 0
        node.onStored(m => { if (policy.builderKeys.has(m.keyId) || policy.announcerKeys.has(m.keyId)) held++ })
        const r0 = performance.now()
        await node.start()
        let firstVerdict: number | null = null
        const series: number[] = []
        let lastSample = r0
        let lastCount = 0
        out(`${plan.name}:`)
        const deadline = r0 + 20 * 60_000
        while (held < total && performance.now() < deadline) {
          await new Promise(resolve => setTimeout(resolve, 250))
          const now = performance.now()
          if (firstVerdict == null && same(await storeVerdicts(store, policy, REPO, history.newest.commit), expected)) firstVerdict = (now - r0) / 1000
          if (now - lastSample >= 5000) {
            const count = held
            const rate = (count - lastCount) / ((now - lastSample) / 1000)
            series.push(Math.round(rate))
            const b = node.stats().backfill
            out(`  ${((now - r0) / 1000).toFixed(0).padStart(4)} s  ${String(count).padStart(7)} stored  ${rate.toFixed(0).padStart(6)} messages/s  behind ${b.behind}  eta ${b.etaSeconds ?? '?'} s`)
            lastSample = now
            lastCount = count
          }
        }
        const seconds = (performance.now() - r0) / 1000
        if (firstVerdict == null && same(await storeVerdicts(store, policy, REPO, history.newest.commit), expected)) firstVerdict = seconds
        const b = node.stats().backfill
        const rate = held / seconds
        await node.stop()
        await peers.stop()
        const after = await floorNear(history.envelopes, policy, join(dir, `floor-${k}`))
        const near = (before + after) / 2
        runs.push({ name: plan.name, seconds, rate, ratio: rate / near, ratioToFirstFloor: rate / firstFloor, floorNear: near, firstVerdictSeconds: firstVerdict, verified: b.verified, skipped: b.skipped, series })
        out(`  done: ${held} of ${total} in ${seconds.toFixed(1)} s = ${rate.toFixed(0)} messages/s; floor next to it ${near.toFixed(0)}/s (${before.toFixed(0)} before, ${after.toFixed(0)} after, ${Math.min(SAMPLE, total)} messages): ratio ${(rate / near).toFixed(2)} (target >= 0.5), ${(rate / firstFloor).toFixed(2)} to the first floor; first correct verdict after ${firstVerdict?.toFixed(1) ?? 'never'} s; verified ${b.verified}, skipped ${b.skipped}, idle pages ${b.idlePages}, paced ${b.paced}, failures ${b.failures}`)
      }
      results.push({ n: total, floorRate: firstFloor, runs })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }

  const checks: boolean[] = []
  const summary = results.map(({ n, floorRate, runs }) => {
    const three = runs.find(r => r.name === 'three peers')!
    const hostile = runs.find(r => r.name.includes('hostile'))!
    // Every honest item is verified once; what was verified beyond them came from the hostile peer.
    const hostileShare = (hostile.verified - n) / hostile.verified
    const honestHeld = hostile.rate / three.rate
    checks.push(...runs.map(r => r.ratio >= 0.5 && r.firstVerdictSeconds != null && r.firstVerdictSeconds <= 60), honestHeld >= 0.8, hostileShare <= 0.25)
    return {
      n,
      floorPerSecond: Math.round(floorRate),
      runs: runs.map(r => ({ name: r.name, seconds: Number(r.seconds.toFixed(1)), perSecond: Math.round(r.rate), floorNearPerSecond: Math.round(r.floorNear), ratio: Number(r.ratio.toFixed(2)), ratioToFirstFloor: Number(r.ratioToFirstFloor.toFixed(2)), firstVerdictSeconds: r.firstVerdictSeconds != null ? Number(r.firstVerdictSeconds.toFixed(1)) : null, verified: r.verified, skipped: r.skipped, series: r.series })),
      hostile: { honestRateHeld: Number(honestHeld.toFixed(2)), hostileShare: Number(hostileShare.toFixed(3)) }
    }
  })
  out(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`)
  out(JSON.stringify({
    bench: 'catchup',
    results: summary,
    target: { ratio: 0.5, firstVerdictSeconds: 60, hostileHonestRateHeld: 0.8, hostileShareMax: 0.25 },
    met: checks.every(Boolean)
  }))
}

main().catch((err: unknown) => { process.stderr.write(`${String((err as Error).stack ?? err)}\n`); process.exit(1) })
