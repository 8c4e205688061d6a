import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Daemon } from '../../src/node/daemon/index.js'
import type { P2PNode } from '../../src/node/p2p/index.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { Store } from '../../src/node/store/types.js'
import { createReportGossip, listReports, saveReport } from '../../src/node/divergence/index.js'
import { silentLogger } from '../../src/node/logger.js'
import { causeRef } from '../../src/protocol/causes.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { signDivergenceReport, verifyDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'
import { runCli } from '../rebuilder/cli-runner.js'
import { announcement, claim, COMMIT_1, imageResult, put, REPO, target } from '../http/fixtures.js'
import { policyFor, startDaemon, startRawPeer, waitFor } from './helpers.js'

const TAG = 'v1.0.0'
const T = target(COMMIT_1, 'default', 'linux/amd64', TAG)

function reportOf (a: { id: string, keyId: string, digest: string }, b: { id: string, keyId: string, digest: string }, extra: Partial<DivergenceReport> = {}): DivergenceReport {
  return {
    target: T,
    a: { claimId: a.id, keyId: a.keyId, manifestDigest: a.digest },
    b: { claimId: b.id, keyId: b.keyId, manifestDigest: b.digest },
    paths: { total: 3, explained: 2 },
    causes: [
      { ...causeRef('machine-id'), count: 2, layers: [1], steps: ['RUN apt-get install -y dbus'], paths: ['etc/machine-id', 'var/lib/dbus/machine-id'] },
      { ...causeRef('gzip-header'), count: 1, layers: [1], steps: ['RUN apt-get install -y dbus'], paths: ['usr/share/doc/dbus/changelog.gz'], evidence: ['usr/share/doc/dbus/changelog.gz: gzip header mtime 2026-11-27T10:00:00Z on this side'] }
    ],
    layers: [{ index: 1, step: 'RUN apt-get install -y dbus', causeCounts: { 'machine-id': 2, 'gzip-header': 1 } }],
    fetched: { entries: 120, bytes: 9000 },
    createdAt: new Date().toISOString(),
    ...extra
  }
}

/** Two builders' claims of one target, of different images. */
function claims (b1: SigningIdentity, b2: SigningIdentity): Array<{ env: ReturnType<typeof signClaim>, id: string, keyId: string, digest: string }> {
  return [[b1, 'one'], [b2, 'two']].map(([id, seed]) => {
    const result = imageResult(seed as string)
    const env = signClaim(claim(T, { result }), id as SigningIdentity)
    return { env, id: decodeMessage(env, { allowEmbeddedKeys: true }).id, keyId: (id as SigningIdentity).keyId, digest: result.manifestDigest }
  })
}

describe('divergence reports on their own gossip topic', () => {
  let root: string
  let observer: Daemon
  let raw: P2PNode
  const b1 = generateIdentity()
  const b2 = generateIdentity()
  const announcer = generateIdentity()
  const stranger = generateIdentity()
  const policy = policyFor([b1, b2], [announcer])

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-report-gossip-'))
    // No engine, no manifests: a node that builds nothing.
    observer = await startDaemon({ dir: join(root, 'observer'), identity: generateIdentity(), policy, http: true })
    raw = await startRawPeer()
    await raw.dial(observer.multiaddrs()[0]!)
    await waitFor('the observer subscribed to reports', () => (raw.stats().topics[TOPICS.divergences] ?? 0) >= 1 && (raw.stats().mesh[TOPICS.divergences] ?? 0) >= 1, 20_000)
  })

  afterAll(async () => {
    await raw?.stop().catch(() => {})
    await observer?.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('an observer stores a builder\'s report, serves it and shows its causes; forged, oversized and strangers\' reports change nothing', async () => {
    const [c1, c2] = claims(b1, b2) as [ReturnType<typeof claims>[number], ReturnType<typeof claims>[number]]
    await raw.publish(TOPICS.announcements, Buffer.from(JSON.stringify(signAnnouncement(announcement(TAG, COMMIT_1, [['default', 'linux/amd64']]), announcer))))
    for (const c of [c1, c2]) await raw.publish(TOPICS.claims, Buffer.from(JSON.stringify(c.env)))
    await waitFor('both claims', async () => (await observer.store.claimsForCommit(REPO, COMMIT_1)).length === 2)

    const good = JSON.stringify(signDivergenceReport(reportOf(c1, c2), b1))
    await raw.publish(TOPICS.divergences, Buffer.from(good))
    await waitFor('the report stored', async () => (await listReports(observer.store)).length === 1)
    const [stored] = await listReports(observer.store)
    expect(stored!.keyId).toBe(b1.keyId)
    expect(stored!.envelopeJson).toBe(good)

    // A stranger's report is dropped without penalty: not stored, not relayed.
    const before = observer.stats().gossip
    await raw.publish(TOPICS.divergences, Buffer.from(JSON.stringify(signDivergenceReport(reportOf({ ...c1, keyId: stranger.keyId }, c2), stranger))))
    await waitFor('the stranger\'s report ignored', () => observer.stats().gossip.ignored > before.ignored)
    expect(observer.stats().gossip.rejected).toBe(before.rejected)
    expect(observer.p2p.score(raw.peerId)).toBeGreaterThanOrEqual(0)

    // A forged report (b2's report with a changed count) and an oversized one are refused, and their sender loses standing.
    const env = signDivergenceReport(reportOf(c2, c1), b2)
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicate: DivergenceReport }
    payload.predicate.causes[0]!.count = 40
    await raw.publish(TOPICS.divergences, Buffer.from(JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(payload)).toString('base64') })))
    await waitFor('the forged report refused', () => observer.stats().gossip.rejected === before.rejected + 1)
    const long = Array.from({ length: 100 }, (_, i) => ({ index: i, step: `RUN ${'x'.repeat(900)}`, causeCounts: { unknown: 1 } }))
    const big = JSON.stringify(signDivergenceReport(reportOf(c2, c1, { layers: long }), b2))
    expect(big.length).toBeGreaterThan(64 * 1024)
    await raw.publish(TOPICS.divergences, Buffer.from(big))
    await waitFor('the oversized report refused', () => observer.stats().gossip.rejected === before.rejected + 2)
    await waitFor('the sender penalised', () => observer.p2p.score(raw.peerId) < 0)

    const after = await listReports(observer.store)
    expect(after.map(r => r.id)).toEqual([stored!.id])
    expect(after[0]!.envelopeJson).toBe(good)

    // The API serves what the observer received, for anyone to verify.
    const api = await (await fetch(`${observer.httpUrl()!}/api/v1/divergences?tag=${TAG}`)).json() as { items: Array<{ keyId: string, envelope: unknown }> }
    expect(api.items).toHaveLength(1)
    expect(verifyDivergenceReport(api.items[0]!.envelope, { keys: policy.builderKeys }).report.causes.map(c => c.id)).toEqual(['machine-id', 'gzip-header'])
    const feed = await (await fetch(`${observer.httpUrl()!}/feed.json`)).json() as { items: Array<{ id: string, tags?: string[] }> }
    expect(feed.items.find(i => i.id === `divergence:${stored!.id}`)?.tags).toEqual(['divergence', 'machine-id', 'gzip-header'])

    // status --node shows the causes, counts, step, evidence and fix.
    const policyFile = join(root, 'policy.json')
    await writeFile(policyFile, JSON.stringify({ version: 1, builders: [b1, b2].map((id, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: id.publicKeyPem })), announcers: [{ name: 'announcer', publicKey: announcer.publicKeyPem }], threshold: 2, minOperators: 2, allowedDissent: 0 }))
    const status = await runCli(['status', TAG, '--node', observer.httpUrl()!, '--policy', policyFile])
    expect(status.stderr).toBe('')
    expect(status.stdout).toMatch(/why builds differ .*3 paths, 2 with a known cause/)
    expect(status.stdout).toMatch(/machine-id × 2: .*etc\/machine-id/)
    expect(status.stdout).toMatch(/gzip-header × 1: .*\n\s+step: RUN apt-get install -y dbus\n\s+seen: usr\/share\/doc\/dbus\/changelog\.gz: gzip header mtime 2026-11-27T10:00:00Z on this side\n\s+fix: /)
  }, 60_000)
})

describe('the divergence report check', () => {
  let dir: string
  let store: Store
  const b1 = generateIdentity()
  const b2 = generateIdentity()
  const policy = policyFor([b1, b2], [])

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-report-check-'))
    store = await createStore({}, { path: join(dir, 'store') })
  })
  afterAll(async () => {
    await store?.close()
    if (dir != null) await rm(dir, { recursive: true, force: true })
  })

  it('refuses a report about another builder\'s claim; drops one its stored claims contradict, repeats, older ones and a full target', async () => {
    const gossip = createReportGossip({ store, policy: () => policy, log: silentLogger().forComponent('test') })
    const [c1, c2] = claims(b1, b2) as [ReturnType<typeof claims>[number], ReturnType<typeof claims>[number]]
    for (const c of [c1, c2]) await put(store, c.env)
    const data = (r: DivergenceReport, by: SigningIdentity): Uint8Array => Buffer.from(JSON.stringify(signDivergenceReport(r, by)))

    expect(await gossip.check(data(reportOf(c1, c2), b2))).toMatchObject({ verdict: 'reject', reason: expect.stringMatching(/about the claim of/) })
    expect(await gossip.check(data(reportOf(c1, { ...c2, digest: c1.digest }), b1))).toMatchObject({ verdict: 'reject' })
    expect(await gossip.check(data(reportOf(c1, { ...c2, digest: imageResult('three').manifestDigest }), b1))).toMatchObject({ verdict: 'ignore', reason: expect.stringMatching(/names another image/) })
    expect(await gossip.check(Buffer.from('{"payloadType":1}'))).toMatchObject({ verdict: 'reject' })

    const first = data(reportOf(c1, c2, { createdAt: '2026-11-27T10:00:00.000Z' }), b1)
    expect((await gossip.check(first)).verdict).toBe('accept')
    expect(await gossip.receive(first)).toBeDefined()
    expect(await gossip.check(first)).toMatchObject({ verdict: 'ignore', reason: 'already stored' })
    expect(await gossip.check(data(reportOf(c1, c2, { createdAt: '2026-11-27T09:00:00.000Z' }), b1))).toMatchObject({ verdict: 'ignore' })
    // A newer report of the pair replaces the older.
    const newer = data(reportOf(c1, c2, { createdAt: '2026-11-27T11:00:00.000Z' }), b1)
    expect((await gossip.check(newer)).verdict).toBe('accept')
    await gossip.receive(newer)
    expect((await listReports(store)).map(r => r.report.createdAt)).toEqual(['2026-11-27T11:00:00.000Z'])

    // A target holds a bounded number of reports: 16 pairs, then gossip adds no more.
    for (let i = 0; i < 15; i++) {
      const r = reportOf({ ...c1, id: `claim-a-${i}` }, c2)
      await saveReport(store, JSON.stringify(signDivergenceReport(r, b1)), r, b1.keyId)
    }
    expect(await listReports(store)).toHaveLength(16)
    expect(await gossip.check(data(reportOf({ ...c1, id: 'claim-a-extra' }, c2), b1))).toMatchObject({ verdict: 'ignore', reason: expect.stringMatching(/already has 16 reports/) })
  })
})
