import { browserAvailable, CHROMIUM } from '../helpers/browser.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { chromium } from 'playwright-core'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog, filterWitnessed } from '../../src/node/tlog/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import {
  checkWitnessed, cosignersOf, encodeCheckpointMessage, takeInclusionLines, parseCheckpoint, parseNote, verifySplitView
} from '../../src/protocol/tlog/index.js'
import { reportWitnessing } from '../../src/node/tlog/status.js'
import { SPLIT_VIEW_REASON } from '../../src/protocol/tlog/split-view.js'
import { LOOPBACK, policyFor, waitFor } from '../node/helpers.js'
import { fakeId, messageId, putMessages } from './messages.js'
import type { StoredClaim } from '../../src/node/store/types.js'


const BROWSER = browserAvailable('witness dashboard')

describe('checkpoint gossip and witnessing', () => {
  const ids = [generateIdentity(), generateIdentity(), generateIdentity()]
  const daemons: Daemon[] = []
  let dir: string

  async function start (identity: SigningIdentity, i: number, bootstrap: string[], http?: boolean): Promise<Daemon> {
    const store = await createStore({}, { path: join(dir, `n${i}`, 'store') })
    const d = await createDaemon({ identity, store, policy: trustNobodyPolicy() }, {
      listen: [LOOPBACK], bootstrap, mdns: false, gossip: { heartbeatIntervalMs: 100 }, tlog: { path: join(dir, `n${i}`, 'tlog'), checkpointIntervalMs: 50 },
      ...(http === true ? { http: { host: '127.0.0.1', port: 0 } } : {})
    })
    await d.start()
    return d
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-witness-'))
    const [a, b, c] = ids as [SigningIdentity, SigningIdentity, SigningIdentity]
    daemons.push(await start(a, 0, [], true))
    const boot = [daemons[0]?.multiaddrs()[0] ?? '']
    daemons.push(await start(b, 1, boot), await start(c, 2, boot, true))
    await waitFor('checkpoint meshes', () => daemons.every(d => (d.p2p.stats().mesh[TOPICS.checkpoints] ?? 0) >= 1))
  })

  afterAll(async () => {
    for (const d of daemons) await d.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** Cosignatures on a node's served checkpoint that verify, by witness key id. */
  function cosigners (a: Daemon): { size: number, keyIds: string[] } {
    const note = a.tlog?.checkpoint() ?? ''
    const parsed = parseNote(note)
    const keyIds = cosignersOf(parsed, new Map(ids.filter(w => w.keyId !== a.keyId).map(w => [w.keyId, w])))
    return { size: parseCheckpoint(parsed.text).size, keyIds }
  }

  it('witnesses cosign a log\'s checkpoints, after first sight only with a consistency proof from the log', async () => {
    const a = daemons[0] as Daemon
    await putMessages(a.store, 0, 10)
    await a.tlog?.sync()
    await waitFor('two cosignatures on size 10', () => { const c = cosigners(a); return c.size === 10 && c.keyIds.length === 2 })
    await putMessages(a.store, 10, 37)
    await a.tlog?.sync()
    await waitFor('two cosignatures on size 37', () => { const c = cosigners(a); return c.size === 37 && c.keyIds.length === 2 }, 20_000)
    const stats = daemons[1]?.stats().tlog?.witness
    expect(stats?.logs).toBeGreaterThanOrEqual(1)
    expect(stats?.unresponsive).toEqual([])
  })

  it('lets a reader demand that messages be in a checkpoint cosigned by w policy witnesses', async () => {
    const a = daemons[0] as Daemon
    const messages = (await a.store.messagesSince(0, 50)).items
    const witnesses = (n: number, of: SigningIdentity[]) => ({ threshold: n, keys: new Map(of.map((w, i) => [w.keyId, { name: `w${i}`, publicKey: w.publicKey }])) })
    const [, b, c] = ids as [SigningIdentity, SigningIdentity, SigningIdentity]
    const ok = await filterWitnessed(a.httpUrl() ?? '', messages, witnesses(2, [b, c]))
    expect(ok.kept).toHaveLength(37)
    const stranger = generateIdentity()
    const short = await filterWitnessed(a.httpUrl() ?? '', messages, witnesses(3, [b, c, stranger]))
    expect(short.kept).toHaveLength(0)
    expect(short.excluded[0]?.reason).toMatch(/cosigned by 2 of the policy's witnesses, 3 needed/)
    // The bundle form carries the same evidence, for offline verification.
    const bundle = await (await fetch(`${a.httpUrl() ?? ''}/claims.intoto.jsonl?inclusion=1`)).text()
    const carried = takeInclusionLines(bundle)
    expect(carried.errors).toEqual([])
    expect(carried.evidence.size).toBe(37)
    expect(checkWitnessed('announcement', messageId(5), carried.evidence.get(messageId(5)), witnesses(2, [b, c]))).toMatchObject({ ok: true, cosigners: ['w0', 'w1'] })
    const unknown = { ...messages[0], id: fakeId(424242) } as typeof messages[0]
    const none = await filterWitnessed(a.httpUrl() ?? '', [unknown], witnesses(1, [b]))
    expect(none.excluded[0]?.reason).toBe('no inclusion proof')
  })

  it('flags a log that signs two different trees of one size, and keeps the proof', async () => {
    const a = daemons[0] as Daemon
    const size = a.tlog?.checkpointSize() ?? 0
    // The same key signing another history: a log showing one view to some, another to others.
    const forgedStore = await createStore({}, { path: join(dir, 'forged-store') })
    await putMessages(forgedStore, 1000, 1000 + size)
    const forged = createTransparencyLog({ store: forgedStore, identity: ids[0] as SigningIdentity }, { path: join(dir, 'forged-tlog') })
    await forged.start()
    expect(forged.checkpointSize()).toBe(size)
    await daemons[1]?.p2p.publish(TOPICS.checkpoints, encodeCheckpointMessage(forged.checkpoint() ?? '', [forged.vkey]))
    const c = daemons[2] as Daemon
    await waitFor('a split view on C', () => (c.stats().tlog?.witness.splitViews ?? []).includes(ids[0]?.keyId ?? ''))
    const res = await fetch(`${c.httpUrl() ?? ''}/tlog/split-views`)
    const { items } = await res.json() as { items: Array<{ origin: string, first: string, second: string, proof: string[], logKeyId: string }> }
    expect(items).toHaveLength(1)
    // Anyone can check the proof with the log's key alone.
    verifySplitView(items[0] as NonNullable<typeof items[0]>, (ids[0] as SigningIdentity).publicKey)
    expect(items[0]?.logKeyId).toBe(ids[0]?.keyId)
    // status --node sets the builder whose log split aside, like an equivocating builder.
    const said: string[] = []
    // Only its key id matters here: a claim as `status --node` read it from the node.
    const claim = { id: fakeId(1), kind: 'claim', keyId: ids[0]?.keyId ?? '', envelopeJson: '{}', cursor: 1, receivedAt: '' } as unknown as StoredClaim
    const r = await reportWitnessing(c.httpUrl() ?? '', policyFor([ids[0] as SigningIdentity], []), [claim], l => said.push(l))
    expect([...r.setAside]).toEqual([[ids[0]?.keyId, SPLIT_VIEW_REASON]])
    expect(r.claims).toEqual([claim])
    expect(said.join('')).toMatch(/proof checked; builder builder-0 not counted/)
    await forged.stop()
    await forgedStore.close()
  })

  it.runIf(BROWSER)('shows the split view on the dashboard', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
    try {
      const page = await browser.newPage()
      await page.goto(`${daemons[2]?.httpUrl() ?? ''}/`)
      const alert = page.locator('#split-views li[role=alert]')
      await alert.waitFor()
      expect(await alert.textContent()).toContain(`the log of key ${ids[0]?.keyId.slice(0, 24) ?? ''}`)
      expect(await page.locator('#tlog-state').textContent()).toMatch(/This node's log holds 0 signed entries/)
    } finally {
      await browser.close()
    }
  })

  it('reports a log that cannot prove a newer checkpoint, and does not cosign it', async () => {
    const a = daemons[0] as Daemon
    const size = a.tlog?.checkpointSize() ?? 0
    // A's key signs a bigger tree than A's node holds: A's node cannot prove it consistent.
    const store = await createStore({}, { path: join(dir, 'ahead-store') })
    await putMessages(store, 0, size + 5)
    const ahead = createTransparencyLog({ store, identity: ids[0] as SigningIdentity }, { path: join(dir, 'ahead-tlog') })
    await ahead.start()
    await daemons[2]?.p2p.publish(TOPICS.checkpoints, encodeCheckpointMessage(ahead.checkpoint() ?? '', [ahead.vkey]))
    const b = daemons[1] as Daemon
    await waitFor('B reports A unresponsive', () => (b.stats().tlog?.witness.unresponsive ?? []).some(u => u.origin === a.tlog?.origin))
    expect(b.stats().tlog?.witness.unresponsive[0]?.lastError).toMatch(/refused/)
    await ahead.stop()
    await store.close()
  })

  it('says which log its witness is behind on, and why: in stats, at /tlog/behind and on the dashboard', async () => {
    const [a, b, c] = daemons as [Daemon, Daemon, Daemon]
    // A witnesses B's log (C is not connected to B: it could not ask B anything).
    await putMessages(b.store, 100, 103)
    await b.tlog?.sync()
    await waitFor('A has cosigned B\'s newest checkpoint', () => { const x = cosigners(b); return x.size === b.tlog?.size() && x.keyIds.includes(ids[0]?.keyId ?? '') })
    const size = b.tlog?.checkpointSize() ?? 0
    // B's key signs a bigger tree than B's node holds, and A hears of it: B's node cannot prove it.
    const store = await createStore({}, { path: join(dir, 'ahead-store-c') })
    await putMessages(store, 0, size + 7)
    const ahead = createTransparencyLog({ store, identity: ids[1] as SigningIdentity }, { path: join(dir, 'ahead-tlog-c') })
    await ahead.start()
    await c.p2p.publish(TOPICS.checkpoints, encodeCheckpointMessage(ahead.checkpoint() ?? '', [ahead.vkey]))
    await ahead.stop()
    await store.close()
    const origin = b.tlog?.origin ?? ''
    await waitFor('A behind on B', () => (a.stats().tlog?.witness.behind ?? []).some(x => x.origin === origin))
    const behind = a.stats().tlog?.witness.behind ?? []
    expect(behind).toEqual([{ origin, logKeyId: ids[1]?.keyId, cosignedSize: size, seenSize: size + 7, reason: 'proof refused', since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown }])
    const served = await (await fetch(`${a.httpUrl() ?? ''}/tlog/behind`)).json() as { items: unknown[] }
    expect(served.items).toEqual(behind)
    if (!BROWSER) return
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
    try {
      const page = await browser.newPage()
      await page.goto(`${a.httpUrl() ?? ''}/`)
      const item = page.locator(`#witness-behind li[data-log="${ids[1]?.keyId ?? ''}"]`)
      await item.waitFor()
      expect(await item.textContent()).toBe(`Witness behind on the log of key ${ids[1]?.keyId.slice(0, 24) ?? ''}: cosigned size ${size}, seen size ${size + 7} (proof refused, since ${behind[0]?.since ?? ''}).`)
    } finally {
      await browser.close()
    }
  })
})
