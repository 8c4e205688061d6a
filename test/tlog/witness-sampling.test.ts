/**
 * Sampled witnessing on real nodes (loopback): each log's checkpoints go to its `w` sampled
 * witnesses, chosen by the rendezvous score anyone can recompute, plus the witness the policy
 * names; nobody witnesses everybody, and a log that loses one of its witnesses says it is
 * under-witnessed (stats, /tlog/under-witnessed, the dashboard).
 */
import { browserAvailable, CHROMIUM } from '../helpers/browser.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { chromium } from 'playwright-core'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { createStore } from '../../src/node/store/index.js'
import { DEFAULT_SAMPLE_EPOCH_MS, sampledWitnesses, sampleScore } from '../../src/node/tlog/witness.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { parsePolicy } from '../../src/protocol/policy.js'
import { cosignersOf, parseCheckpoint, parseNote } from '../../src/protocol/tlog/index.js'
import { LOOPBACK, waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'


const BROWSER = browserAvailable('under-witnessed dashboard')
const NODES = 7
const W = 2

describe('sampled witnessing on real nodes', () => {
  const ids: SigningIdentity[] = Array.from({ length: NODES }, () => generateIdentity())
  // The last node is the policy's witness: it witnesses every builder's log whatever the sample says.
  const named = ids[NODES - 1] as SigningIdentity
  const policy = parsePolicy({
    version: 1,
    builders: ids.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'announcer', publicKey: generateIdentity().publicKeyPem }],
    threshold: 2,
    minOperators: 2,
    allowedDissent: 0,
    witnesses: { threshold: 1, keys: [{ name: 'named', publicKey: named.publicKeyPem }] }
  })
  const daemons: Daemon[] = []
  let dir: string
  const epoch = (): number => Math.floor(Date.now() / DEFAULT_SAMPLE_EPOCH_MS)

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-sampling-'))
    for (const [i, identity] of ids.entries()) {
      const store = await createStore({}, { path: join(dir, `n${i}`, 'store') })
      const d = await createDaemon({ identity, store, policy }, {
        listen: [LOOPBACK],
        // Everyone connected to everyone: every node knows every other as a candidate.
        bootstrap: daemons.map(x => x.multiaddrs()[0] ?? ''),
        mdns: false,
        gossip: { heartbeatIntervalMs: 100 },
        http: { host: '127.0.0.1', port: 0 },
        tlog: { path: join(dir, `n${i}`, 'tlog'), checkpointIntervalMs: 50, witness: { witnesses: W, witnessGraceMs: 1000 } }
      })
      await d.start()
      daemons.push(d)
    }
    // Every node connected to every other (what the sampling below assumes): a pair whose dial
    // was lost on a busy machine is dialled again here.
    await waitFor('a full mesh of connections', async () => {
      for (const d of daemons) {
        for (const o of daemons) {
          if (o !== d && !d.p2p.connectedPeers().includes(o.peerId)) await d.p2p.dial(o.multiaddrs()[0] ?? '').catch(() => {})
        }
      }
      return daemons.every(d => d.p2p.connectedPeers().length === NODES - 1)
    }, 90_000)
  }, 150_000)

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  /** Key ids of the nodes whose valid cosignature a node's served checkpoint carries, and its size. */
  function cosigners (d: Daemon): { size: number, keyIds: string[] } {
    const parsed = parseNote(d.tlog?.checkpoint() ?? '')
    return { size: parseCheckpoint(parsed.text).size, keyIds: cosignersOf(parsed, new Map(ids.map(x => [x.keyId, x]))).sort() }
  }

  it('ranks witnesses by a score anyone recomputes from the two keys and the epoch', () => {
    const [a, b, c] = ids as [SigningIdentity, SigningIdentity, SigningIdentity]
    expect(sampleScore(a.keyId, b.keyId, 7)).toEqual(sampleScore(a.keyId, b.keyId, 7))
    expect(sampleScore(a.keyId, b.keyId, 7)).not.toEqual(sampleScore(a.keyId, b.keyId, 8))
    expect(sampleScore(a.keyId, b.keyId, 7)).not.toEqual(sampleScore(b.keyId, a.keyId, 7))
    // The log itself is never its own witness, and the order of the candidates does not matter.
    const all = ids.map(x => x.keyId)
    expect(sampledWitnesses(a.keyId, all, W, 7)).not.toContain(a.keyId)
    expect(sampledWitnesses(a.keyId, [...all].reverse(), W, 7)).toEqual(sampledWitnesses(a.keyId, all, W, 7))
    expect(sampledWitnesses(a.keyId, [b.keyId, c.keyId], 8, 7)).toHaveLength(2)
  })

  it('each log is cosigned by exactly its sampled witnesses and the policy\'s witness; nobody witnesses everybody', async () => {
    for (const [i, d] of daemons.entries()) {
      await putMessages(d.store, i * 100, i * 100 + 5 + i)
      await d.tlog?.sync()
    }
    const all = ids.map(x => x.keyId)
    const expected = (d: Daemon): string[] => [...new Set([...sampledWitnesses(d.keyId, all, W, epoch()), ...(d.keyId === named.keyId ? [] : [named.keyId])])].sort()
    await waitFor('every log cosigned by its expected witnesses', () => daemons.every(d => {
      const c = cosigners(d)
      return c.size === d.tlog?.size() && expected(d).every(k => c.keyIds.includes(k))
    }), 30_000)
    for (const d of daemons) expect(cosigners(d).keyIds).toEqual(expected(d))
    // The named witness follows every other log; every other node only the logs it is sampled for.
    const followed = daemons.map(d => d.stats().tlog?.witness.sampled ?? -1)
    expect(followed[NODES - 1]).toBe(NODES - 1)
    for (const [j, d] of daemons.slice(0, NODES - 1).entries()) {
      const mine = daemons.filter(x => x !== d && sampledWitnesses(x.keyId, all, W, epoch()).includes(d.keyId)).length
      expect(followed[j]).toBe(mine)
    }
    // W + 1 cosignatures per log against NODES - 1 without sampling.
    expect(daemons.reduce((n, d) => n + cosigners(d).keyIds.length, 0)).toBeLessThan(NODES * (NODES - 1))
    for (const d of daemons) expect(d.stats().tlog?.witness.underWitnessed).toEqual([])
  })

  it('reports a log under-witnessed when one of its witnesses stops answering, in stats, at /tlog/under-witnessed and on the dashboard', async () => {
    const all = ids.map(x => x.keyId)
    // A log whose sampled witnesses include a node other than the named one; that node stops.
    const log = daemons.find(d => d.keyId !== named.keyId && sampledWitnesses(d.keyId, all, W, epoch()).some(k => k !== named.keyId)) as Daemon
    const goneKey = sampledWitnesses(log.keyId, all, W, epoch()).find(k => k !== named.keyId) as string
    const gone = daemons.find(d => d.keyId === goneKey) as Daemon
    await gone.stop()
    const size = log.tlog?.size() ?? 0
    // Enough entries to pay for a push round at once (2 tokens per witness, W + the named one).
    await putMessages(log.store, 5000, 5008)
    await log.tlog?.sync()
    await waitFor('the log under-witnessed', () => (log.stats().tlog?.witness.underWitnessed ?? []).some(u => u.logKeyId === log.keyId), 20_000)
    const [u] = (log.stats().tlog?.witness.underWitnessed ?? []).filter(x => x.logKeyId === log.keyId)
    const expected = new Set([...sampledWitnesses(log.keyId, all, W, epoch()), named.keyId])
    expect(u).toMatchObject({ origin: log.tlog?.origin, size: size + 8, expected: expected.size, missing: [goneKey] })
    expect(u?.cosigners.sort()).toEqual([...expected].filter(k => k !== goneKey).sort())
    const served = await (await fetch(`${log.httpUrl() ?? ''}/tlog/under-witnessed`)).json() as { items: unknown[] }
    expect(served.items).toEqual(log.stats().tlog?.witness.underWitnessed)
    if (!BROWSER) return
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
    try {
      const page = await browser.newPage()
      await page.goto(`${log.httpUrl() ?? ''}/`)
      const item = page.locator(`#under-witnessed li[data-log="${log.keyId}"]`)
      await item.waitFor()
      expect(await item.textContent()).toBe(`Under-witnessed: the log of key ${log.keyId.slice(0, 24)}: size ${size + 8} cosigned by ${expected.size - 1} of ${expected.size} expected witnesses (since ${u?.since ?? ''}).`)
    } finally {
      await browser.close()
    }
  })
})
