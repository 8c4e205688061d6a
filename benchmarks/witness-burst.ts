/**
 * Witnessing under a burst: three real nodes (daemon, level store, transparency log and
 * witness, default rates and intervals, as `join` runs them), each in a child process, on
 * loopback; each is a policy builder and witnesses the other two logs.
 *
 * Phases:
 *  - baseline: each node signs one failure claim on the idle network: the time from each
 *    log's last entry to its newest checkpoint being cosigned by both witnesses;
 *  - burst: each node signs BENCH_BURST (200) failure claims, BENCH_RATE (20) a second, stores
 *    and publishes each (as the scheduler does when builds fail one after another), the nodes
 *    starting BENCH_STAGGER_MS (1000) apart, then the same time is
 *    measured per log, from its last entry (gossip and back-fill go on adding the others'
 *    claims for a while) to its newest checkpoint cosigned by both witnesses.
 * A log is settled once its newest checkpoint covers every entry, carries both cosignatures and
 * no entry came for BENCH_QUIET_S (10) seconds; a log not settled BENCH_DEADLINE_S (240) after the
 * burst counts as never cosigned. Target: every log within 30 s, in the burst. BENCH_PEER_RATE and
 * BENCH_CHECKPOINT_RATE (`PER_SECOND,BURST`) lower the admission rates of claims and of
 * checkpoints, so that the burst overruns them.
 *
 * Prints, per log, entries and seconds to full cosigning, what each witness reported as behind,
 * then one JSON line with the figures, the ratio to the baseline and `met`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { exportPrivatePem, generateIdentity, identityFromPrivatePem } from '../src/protocol/keys.js'
import { signClaim } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { cosignersOf, parseNote, parseCheckpoint } from '../src/protocol/tlog/index.js'
import type { Claim } from '../src/protocol/types.js'
import { sampleClaim } from './claims.js'
import { forkChild } from './child.js'

const BURST = Number(process.env.BENCH_BURST ?? 200)
/** Claims a node signs per second in the burst (failing builds finish about this fast), and how far apart the nodes start. */
const RATE = Number(process.env.BENCH_RATE ?? 20)
const STAGGER_MS = Number(process.env.BENCH_STAGGER_MS ?? 1000)
/** Admission rates other than the defaults, `PER_SECOND,BURST` (for claims, and for checkpoints): low ones make the burst overrun them. */
const rate = (v: string | undefined): { perSecond: number, burst: number } | undefined => {
  if (v === undefined || v === '') return undefined
  const [perSecond, burst] = v.split(',').map(Number)
  if (!Number.isFinite(perSecond) || !Number.isFinite(burst)) throw new Error(`a rate is PER_SECOND,BURST, got ${v}`)
  return { perSecond: perSecond!, burst: burst! }
}
const PEER_RATE = rate(process.env.BENCH_PEER_RATE)
const CHECKPOINT_RATE = rate(process.env.BENCH_CHECKPOINT_RATE)
const QUIET_S = Number(process.env.BENCH_QUIET_S ?? 10)
const DEADLINE_S = Number(process.env.BENCH_DEADLINE_S ?? 240)
const TARGET_S = 30
const NODES = 3
const LOOPBACK = '/ip4/127.0.0.1/tcp/0'
const self = fileURLToPath(import.meta.url)

/** A failed build of variant `i` of `tag`, as the scheduler signs when a release's source is gone. */
function failureClaim (tag: string, i: number): Claim {
  const { result: _result, ...c } = sampleClaim(i)
  return { ...c, target: { ...c.target, tag, commit: Buffer.from(tag).toString('hex').padEnd(40, '0').slice(0, 40), variant: `variant-${i}` }, failure: { class: 'source-error', message: 'the commit is no longer in the repository' } }
}

interface LogState {
  size: number
  checkpointSize: number
  /** Witness key ids whose cosignature the newest checkpoint carries. */
  cosigners: string[]
  /** When the log last grew, and when its newest checkpoint was first seen covering it and cosigned by every witness. */
  lastEntryAt: number
  fullAt: number | undefined
  behind: unknown[]
  throttled: number
}
type ToChild = { type: 'dial', addrs: string[] } | { type: 'sign', tag: string, count: number, delayMs: number } | { type: 'state' } | { type: 'stop' }
type FromChild = { type: 'ready', addr: string } | { type: 'signed', ms: number } | { type: 'state', state: LogState } | { type: 'dialled' }

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

// ---------------------------------------------------------------- one node
async function runNode (dir: string, policyFile: string, keyFile: string): Promise<void> {
  const { createDaemon } = await import('../src/node/daemon/index.js')
  const { createStore } = await import('../src/node/store/index.js')
  const { createLogger } = await import('../src/node/logger.js')
  const { TOPICS } = await import('../src/node/p2p/index.js')
  const logger = createLogger({ defaultLevel: 'warn' })
  const policy = parsePolicy(JSON.parse(await readFile(policyFile, 'utf8')))
  const identity = identityFromPrivatePem(await readFile(keyFile, 'utf8'))
  const witnesses = new Map([...policy.builderKeys].filter(([k]) => k !== identity.keyId).map(([k, publicKey]) => [k, { publicKey }]))
  const store = await createStore({ logger }, { path: join(dir, 'store') })
  const daemon = await createDaemon({ identity, store, policy, logger }, {
    listen: [LOOPBACK], bootstrap: [], mdns: false,
    gossip: { ...(PEER_RATE !== undefined ? { peerRate: PEER_RATE } : {}), ...(CHECKPOINT_RATE !== undefined ? { checkpointPeerRate: CHECKPOINT_RATE } : {}) },
    tlog: { path: join(dir, 'tlog'), witnessPath: join(dir, 'witness') }
  })
  await daemon.start()
  const tlog = daemon.tlog!
  const state: LogState = { size: tlog.size(), checkpointSize: 0, cosigners: [], lastEntryAt: Date.now(), fullAt: undefined, behind: [], throttled: 0 }
  const watch = setInterval(() => {
    const size = tlog.size()
    if (size !== state.size) { state.size = size; state.lastEntryAt = Date.now(); state.fullAt = undefined }
    const note = tlog.checkpoint()
    if (note === undefined) return
    const parsed = parseNote(note)
    state.checkpointSize = parseCheckpoint(parsed.text).size
    state.cosigners = cosignersOf(parsed, witnesses)
    if (state.fullAt === undefined && state.checkpointSize === state.size && state.cosigners.length === witnesses.size) state.fullAt = Date.now()
  }, 20)
  process.on('message', (m: ToChild) => {
    void (async () => {
      if (m.type === 'dial') {
        for (const a of m.addrs) await daemon.p2p.dial(a)
        // Until every other node is a subscriber of the checkpoint topic here.
        while ((daemon.p2p.stats().topics[TOPICS.checkpoints] ?? 0) < NODES - 1) await new Promise(resolve => setTimeout(resolve, 50))
        process.send?.({ type: 'dialled' })
      } else if (m.type === 'sign') {
        const envelopes = Array.from({ length: m.count }, (_, i) => JSON.stringify(signClaim(failureClaim(m.tag, i), identity)))
        await sleep(m.delayMs)
        const start = Date.now()
        // As the scheduler does with each finished build: stored, then published.
        for (const [i, e] of envelopes.entries()) {
          const wait = start + i * 1000 / RATE - Date.now()
          if (wait > 0) await sleep(wait)
          await daemon.ingest.record(e)
          await daemon.p2p.publish(TOPICS.claims, Buffer.from(e, 'utf8')).catch(() => {})
        }
        process.send?.({ type: 'signed', ms: Date.now() - start })
      } else if (m.type === 'state') {
        const s = daemon.stats()
        process.send?.({ type: 'state', state: { ...state, behind: s.tlog?.witness.behind ?? [], throttled: daemon.p2p.stats().throttled } })
      } else if (m.type === 'stop') {
        clearInterval(watch)
        await daemon.stop()
        process.exit(0)
      }
    })()
  })
  process.send?.({ type: 'ready', addr: daemon.multiaddrs()[0]! })
}

// ---------------------------------------------------------------- the coordinator
async function main (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'neko-witness-burst-'))
  const ids = Array.from({ length: NODES }, () => generateIdentity())
  await writeFile(join(dir, 'policy.json'), JSON.stringify({
    version: 1,
    builders: ids.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'maintainer', publicKey: generateIdentity().publicKeyPem }],
    threshold: 2,
    minOperators: 2,
    allowedDissent: 0
  }))
  const nodes = await Promise.all(ids.map(async (id, i) => {
    await writeFile(join(dir, `node-${i}.pem`), exportPrivatePem(id))
    const c = forkChild<FromChild, ToChild>(self, ['node', join(dir, `node-${i}`), join(dir, 'policy.json'), join(dir, `node-${i}.pem`)])
    return { ...c, addr: (await c.next('ready')).addr }
  }))
  // A full mesh: each node dials the ones started before it.
  for (const [i, n] of nodes.entries()) n.send({ type: 'dial', addrs: nodes.slice(0, i).map(o => o.addr) })
  await Promise.all(nodes.map(async n => await n.next('dialled')))

  const states = async (): Promise<LogState[]> => await Promise.all(nodes.map(async n => { n.send({ type: 'state' }); return (await n.next('state')).state }))
  /** Signs `count` claims on every node at once; then waits until every log settles or the deadline passes. */
  async function phase (tag: string, count: number): Promise<{ seconds: Array<number | null>, final: LogState[], signMs: number[] }> {
    const signed = await Promise.all(nodes.map(async (n, i) => { n.send({ type: 'sign', tag, count, delayMs: i * STAGGER_MS }); return (await n.next('signed')).ms }))
    const deadline = Date.now() + DEADLINE_S * 1000
    let s: LogState[]
    for (;;) {
      s = await states()
      const now = Date.now()
      const settled = s.every(l => l.fullAt !== undefined && now - l.lastEntryAt >= QUIET_S * 1000)
      if (settled || now > deadline) break
      await sleep(500)
    }
    return { seconds: s.map(l => l.fullAt !== undefined ? (l.fullAt - l.lastEntryAt) / 1000 : null), final: s, signMs: signed }
  }

  const show = (x: number | null): string => x === null ? 'never' : `${x.toFixed(2)} s`
  const base = await phase('v1.0.0', 1)
  console.log(`baseline, 1 claim per node: ${base.final.map((l, i) => `log ${i}: ${l.size} entries, cosigned by both witnesses ${show(base.seconds[i] ?? null)} after its last entry`).join('; ')}`)
  const burst = await phase('v2.0.0', BURST)
  console.log(`burst, ${BURST} claims per node (signed, stored and published in ${burst.signMs.map(ms => `${(ms / 1000).toFixed(1)} s`).join(', ')}):`)
  for (const [i, l] of burst.final.entries()) {
    console.log(`  log ${i}: ${l.size} entries, newest checkpoint ${l.checkpointSize} cosigned by ${l.cosigners.length} of ${NODES - 1} witnesses, ${show(burst.seconds[i] ?? null)} after its last entry; gossip throttled at its node: ${l.throttled}; witness behind on: ${JSON.stringify(l.behind)}`)
  }
  const worst = (xs: Array<number | null>): number | null => xs.some(x => x === null) ? null : Math.max(...xs as number[])
  const baselineS = worst(base.seconds)
  const burstS = worst(burst.seconds)
  const met = burstS !== null && burstS <= TARGET_S
  for (const n of nodes) n.send({ type: 'stop' })
  await Promise.all(nodes.map(async n => { await n.exited() }))
  await rm(dir, { recursive: true, force: true })
  console.log(JSON.stringify({
    bench: 'witness-burst',
    nodes: NODES,
    claimsPerNode: BURST,
    claimsPerSecond: RATE,
    ...(PEER_RATE !== undefined ? { peerRate: PEER_RATE } : {}),
    ...(CHECKPOINT_RATE !== undefined ? { checkpointPeerRate: CHECKPOINT_RATE } : {}),
    entries: burst.final.map(l => l.size),
    baselineSeconds: baselineS,
    burstSeconds: burst.seconds,
    worstSeconds: burstS,
    ratioToBaseline: burstS !== null && baselineS !== null && baselineS > 0 ? Number((burstS / baselineS).toFixed(2)) : null,
    targetSeconds: TARGET_S,
    met
  }))
}

const role = process.argv[2]
if (role === 'node') await runNode(process.argv[3]!, process.argv[4]!, process.argv[5]!)
else await main()
