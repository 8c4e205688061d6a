/**
 * Witnessing keeps up with a burst, on real nodes: three daemons on loopback, each a policy
 * builder witnessing the other two logs, each signing a burst of failure claims. Admission
 * rates are set low, as a larger burst meets them at the default rates; checkpoints are pushed
 * to the witnesses, not gossiped, so the rates drop none of them: every log's newest checkpoint
 * must carry both witnesses' cosignatures within seconds of its last entry, and a witness that
 * falls behind says so at info level, and why.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { createLogger } from '../../src/node/logger.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signClaim } from '../../src/protocol/messages.js'
import { cosignersOf, encodeCheckpointMessage, formatCheckpoint, formatVerifierKey, logOrigin, parseCheckpoint, parseNote, signNote } from '../../src/protocol/tlog/index.js'
import { claim, target } from '../http/fixtures.js'
import { LOOPBACK, policyFor, startRawPeer, waitFor } from '../node/helpers.js'

const CLAIMS_PER_NODE = 60
/** From a log's last entry to its newest checkpoint cosigned by both witnesses. */
const BOUND_MS = 15_000

describe('witnessing a burst on real nodes', () => {
  const ids = [generateIdentity(), generateIdentity(), generateIdentity()]
  const policy = policyFor(ids, [generateIdentity()], 2)
  const daemons: Daemon[] = []
  const records: Array<Record<string, unknown>> = []
  let dir: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-witness-burst-'))
    const sink = new Writable({
      write (chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>)
        done()
      }
    })
    const logger = createLogger({ level: 'info', format: 'json', destination: sink })
    for (const [i, identity] of ids.entries()) {
      const d = await createDaemon({ identity, store: await createStore({}, { path: join(dir, `n${i}`, 'store') }), policy, logger: logger.bind({ node: `n${i}` }) }, {
        listen: [LOOPBACK],
        bootstrap: daemons.map(o => o.multiaddrs()[0] ?? ''),
        mdns: false,
        gossip: {
          heartbeatIntervalMs: 100,
          // Low rates: the burst overruns both the claims' buckets and the checkpoints' own.
          peerRate: { perSecond: 5, burst: 10 },
          checkpointPeerRate: { perSecond: 1, burst: 2 }
        },
        tlog: { path: join(dir, `n${i}`, 'tlog'), checkpointIntervalMs: 200, witness: { refetchMs: 300, retryMs: 1000, maxRetryMs: 4000 } }
      })
      await d.start()
      daemons.push(d)
    }
    await waitFor('a full mesh on the checkpoint topic', () => daemons.every(d => (d.p2p.stats().topics[TOPICS.checkpoints] ?? 0) === 2), 30_000)
  }, 60_000)

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  /** Each log's size, and whether its newest checkpoint covers it with both other nodes' cosignatures. */
  function logState (d: Daemon, i: number): { size: number, full: boolean, cosigners: number } {
    const tlog = d.tlog
    const note = tlog?.checkpoint()
    if (tlog === undefined || note === undefined) return { size: 0, full: false, cosigners: 0 }
    const parsed = parseNote(note)
    const witnesses = new Map(ids.filter((_, j) => j !== i).map(w => [w.keyId, { publicKey: w.publicKey }]))
    const cosigners = cosignersOf(parsed, witnesses).length
    return { size: tlog.size(), full: parseCheckpoint(parsed.text).size === tlog.size() && cosigners === 2, cosigners }
  }

  it('cosigns every log\'s newest checkpoint within seconds of its last entry, under admission rates a gossiped burst would exceed', async () => {
    const lastEntry = [0, 0, 0]
    const sizes = daemons.map(d => d.tlog?.size() ?? 0)
    const fullAt: Array<number | undefined> = [undefined, undefined, undefined]
    const watch = setInterval(() => {
      daemons.forEach((d, i) => {
        const s = logState(d, i)
        if (s.size !== sizes[i]) { sizes[i] = s.size; lastEntry[i] = Date.now(); fullAt[i] = undefined }
        if (s.full && fullAt[i] === undefined) fullAt[i] = Date.now()
      })
    }, 20)
    try {
      // Each node signs, stores and publishes its failure claims as fast as it can.
      await Promise.all(daemons.map(async (d, i) => {
        for (let k = 0; k < CLAIMS_PER_NODE; k++) {
          const env = JSON.stringify(signClaim(claim(target('e'.repeat(40), `variant-${k}`, 'linux/amd64', 'v9'), { failure: 'source-error' }), ids[i] as SigningIdentity))
          await d.ingest.record(env)
          await d.p2p.publish(TOPICS.claims, Buffer.from(env, 'utf8'))
        }
      }))
      await waitFor('every log cosigned by both witnesses, with no entry for 2 s', () => fullAt.every(t => t !== undefined) && lastEntry.every(t => Date.now() - t > 2000), 60_000).catch((err: unknown) => {
        // What each node had, to tell a lost checkpoint from a lost cosignature.
        throw new Error(`${(err as Error).message}: ${JSON.stringify(daemons.map((d, i) => ({ ...logState(d, i), witness: d.stats().tlog?.witness, throttledCheckpoints: d.p2p.stats().throttledCheckpoints })))}`)
      })
    } finally {
      clearInterval(watch)
    }
    for (const [i, t] of fullAt.entries()) expect((t ?? Infinity) - (lastEntry[i] ?? 0)).toBeLessThan(BOUND_MS)
    // Checkpoints went straight to the witnesses and cosignatures came back in the answers:
    // none travelled on gossip, so the checkpoint admission rate had nothing to drop.
    expect(daemons.reduce((n, d) => n + d.p2p.stats().throttledCheckpoints, 0)).toBe(0)
    // Each witness that fell behind said so once per log and reason, and that it caught up. Whether
    // one falls behind at all depends on which copies the rate dropped (a later checkpoint that
    // gets through supersedes a dropped one): the reports themselves are pinned down against
    // stand-in logs in witness-unreachable.test.ts.
    const behind = records.filter(r => r.component === 'witness' && typeof r.msg === 'string' && r.msg.startsWith('witness behind on a log'))
    for (const r of behind) {
      expect(r).toMatchObject({ level: 30, reason: expect.stringMatching(/^(throttled|proof refused|unreachable)$/) as unknown })
      expect(typeof r.origin).toBe('string')
      expect(r.seenSize).toBeGreaterThanOrEqual(r.cosignedSize as number)
    }
    // Once per log and state: a log's states (behind for a reason, caught up) never repeat back to back.
    const states = new Map<string, string[]>()
    for (const r of records) {
      if (r.component !== 'witness' || typeof r.msg !== 'string') continue
      const state = r.msg === 'witness caught up with a log' ? 'caught up' : r.msg.startsWith('witness behind on a log') ? String(r.reason) : undefined
      if (state === undefined) continue
      const key = `${String(r.node)} ${String(r.origin)}`
      states.set(key, [...states.get(key) ?? [], state])
    }
    for (const s of states.values()) {
      expect(s.every((x, k) => k === 0 || x !== s[k - 1])).toBe(true)
      expect(s.at(-1)).toBe('caught up')
    }
    // Caught up everywhere: nothing left behind in stats.
    for (const d of daemons) expect(d.stats().tlog?.witness.behind).toEqual([])
  }, 120_000)
})

describe('checkpoint admission under a claim flood', () => {
  let dir: string
  const closers: Array<() => Promise<void>> = []
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-checkpoint-lane-')) })
  afterAll(async () => {
    for (const close of closers) await close().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('lets a checkpoint through from a peer whose claims are over their rate: checkpoints have buckets of their own', async () => {
    const victim = await createDaemon({ identity: generateIdentity(), store: await createStore({}, { path: join(dir, 'store') }), policy: policyFor([generateIdentity()], []) }, {
      listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100 }, tlog: { path: join(dir, 'tlog') }
    })
    await victim.start()
    closers.push(async () => { await victim.stop() })
    const peer = await startRawPeer()
    closers.unshift(async () => { await peer.stop() })
    await peer.dial(victim.multiaddrs()[0] ?? '')
    // Each side knows the other's subscriptions, so what the peer publishes goes to the node.
    await waitFor('the peer and the node subscribed at each other', () => [victim.p2p, peer].every(n => (n.stats().topics[TOPICS.claims] ?? 0) >= 1 && (n.stats().topics[TOPICS.checkpoints] ?? 0) >= 1), 15_000)
    const strangers = Array.from({ length: 20 }, () => generateIdentity())
    for (let i = 0; i < 200; i++) {
      await peer.publish(TOPICS.claims, Buffer.from(JSON.stringify(signClaim(claim(target('f'.repeat(40), `flood-${i}`, 'linux/amd64'), { failure: 'build-failed' }), strangers[i % 20] as SigningIdentity))))
    }
    const log = generateIdentity()
    const origin = logOrigin(log.keyId)
    await peer.publish(TOPICS.checkpoints, encodeCheckpointMessage(signNote(formatCheckpoint({ origin, size: 1, rootHash: Buffer.alloc(32, 1) }), origin, log.privateKey), [formatVerifierKey(origin, log.publicKey)]))
    // Taken on first sight and cosigned, though the claims were throttled.
    await waitFor('the checkpoint witnessed', () => (victim.stats().tlog?.witness.logs ?? 0) === 1, 20_000)
    expect(victim.p2p.stats().throttled).toBeGreaterThan(50)
    expect(victim.p2p.stats().throttledCheckpoints).toBe(0)
  }, 60_000)
})
