/**
 * What gossip no longer repeats on a timer (capabilities statements, divergence reports, test results) reaches
 * a node that joins late through `/neko-rebuilder/statements/1.0.0`, fetched from the peers it
 * meets, on real nodes over loopback; what a peer serves is checked as gossip is.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Daemon } from '../../src/node/daemon/index.js'
import { createP2PNode, type P2PNode } from '../../src/node/p2p/index.js'
import { listReports, saveReport } from '../../src/node/divergence/index.js'
import { createTestResultGossip, listTestResults } from '../../src/node/test-results/index.js'
import { createLogger } from '../../src/node/logger.js'
import { signTestResult } from '../../src/protocol/test-result.js'
import { causeRef } from '../../src/protocol/causes.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { signDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'
import { announcement, claim, COMMIT_1, imageResult, put, target } from '../http/fixtures.js'
import { LOOPBACK, policyFor, startDaemon, waitFor } from './helpers.js'

const TAG = 'v1.0.0'
const T = target(COMMIT_1, 'default', 'linux/amd64', TAG)

describe('statements fetched from the peers a node meets', () => {
  let root: string
  const daemons: Daemon[] = []
  let raw: P2PNode | undefined
  const b1 = generateIdentity()
  const b2 = generateIdentity()
  const announcer = generateIdentity()
  const policy = policyFor([b1, b2], [announcer])
  let good: string
  let tested: string

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-statements-'))
    // A runs as builder b1: its own smoke test results are what it serves.
    const a = await startDaemon({ dir: join(root, 'a'), identity: b1, policy })
    daemons.push(a)
    // A holds a release, two builders' claims of one target and b1's report of why they differ.
    await put(a.store, signAnnouncement(announcement(TAG, COMMIT_1, [['default', 'linux/amd64']]), announcer))
    const refs = [[b1, 'one'], [b2, 'two']].map(([id, seed]) => {
      const result = imageResult(seed as string)
      const env = signClaim(claim(T, { result }), id as SigningIdentity)
      return { env, claimId: decodeMessage(env, { allowEmbeddedKeys: true }).id, keyId: (id as SigningIdentity).keyId, manifestDigest: result.manifestDigest }
    })
    for (const r of refs) await put(a.store, r.env)
    const report: DivergenceReport = {
      target: T,
      a: { claimId: refs[0]!.claimId, keyId: b1.keyId, manifestDigest: refs[0]!.manifestDigest },
      b: { claimId: refs[1]!.claimId, keyId: b2.keyId, manifestDigest: refs[1]!.manifestDigest },
      paths: { total: 1, explained: 1 },
      causes: [{ ...causeRef('machine-id'), count: 1, layers: [1], steps: ['RUN apt-get install -y dbus'], paths: ['etc/machine-id'] }],
      layers: [{ index: 1, step: 'RUN apt-get install -y dbus', causeCounts: { 'machine-id': 1 } }],
      fetched: { entries: 10, bytes: 900 },
      createdAt: new Date().toISOString()
    }
    good = JSON.stringify(signDivergenceReport(report, b1))
    await saveReport(a.store, good, report, b1.keyId)
    // ... and b1's signed smoke test result of its image, gossiped once before B existed.
    const c = claim(T, { result: imageResult('one') })
    tested = JSON.stringify(signTestResult({ target: c.target, manifestDigest: c.result!.manifestDigest, recipe: c.recipe, environment: c.environment, result: 'PASSED', command: ['/bin/busybox', 'true'], gpu: false, exitCode: 0, startedOn: '2026-01-01T00:00:00.000Z', finishedOn: '2026-01-01T00:00:01.000Z' }, b1))
    const gossip = createTestResultGossip({ store: a.store, policy: () => policy, log: createLogger({ level: 'silent' }).forComponent('test-results') })
    const data = Buffer.from(tested, 'utf8')
    const checked = await gossip.check(data)
    expect(checked.verdict).toBe('accept')
    await gossip.receive(data, checked)
  })

  afterAll(async () => {
    await raw?.stop().catch(() => {})
    for (const d of daemons) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('a node that joins late gets the statements and reports its first peer holds, with nothing gossiped again', async () => {
    const a = daemons[0] as Daemon
    // A published its statement and its report before B existed; nothing is published again.
    const b = await startDaemon({ dir: join(root, 'b'), identity: generateIdentity(), policy, bootstrap: [a.multiaddrs()[0]!] })
    daemons.push(b)
    await waitFor('the report fetched', async () => (await listReports(b.store)).length === 1, 20_000)
    expect((await listReports(b.store))[0]?.envelopeJson).toBe(good)
    await waitFor('A\'s statement fetched', () => b.builders().some(x => x.keyId === a.keyId))
    expect(b.builders().find(x => x.keyId === a.keyId)?.envelopeJson).toBe(a.builders().find(x => x.self)?.envelopeJson)
    await waitFor('A\'s test result fetched', async () => (await listTestResults(b.store)).length === 1)
    expect((await listTestResults(b.store))[0]?.envelopeJson).toBe(tested)
    // All of it came by back-fill and the fetch: B accepted no gossip message.
    expect(b.stats().gossip.accepted).toBe(0)
  })

  it('checks what a peer serves as gossip is: a forged statement and a forged report cost the peer and change nothing', async () => {
    const b = daemons[1] as Daemon
    const env = JSON.parse(good) as { payload: string }
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicate: DivergenceReport }
    payload.predicate.causes[0]!.count = 40
    const forgedReport = Buffer.from(JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(payload)).toString('base64') }))
    const forgedStatement = Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'e30=', signatures: [] }))
    raw = await createP2PNode({
      privateKey: generateIdentity().privateKey,
      validate: () => 'accept',
      onMessage: () => {},
      backfillSource: async ({ cursor }) => ({ items: [], next: cursor }),
      statementsSource: async () => ({ capabilities: [forgedStatement], reports: [forgedReport] })
    }, { listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100 } })
    await raw.start()
    const before = b.builders().length
    await b.p2p.dial(raw.multiaddrs()[0]!)
    await waitFor('the peer penalised', () => b.p2p.score(raw!.peerId) < 0, 20_000)
    expect(b.builders()).toHaveLength(before)
    expect((await listReports(b.store)).map(r => r.envelopeJson)).toEqual([good])
  })
})
