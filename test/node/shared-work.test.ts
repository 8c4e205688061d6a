import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon, type DaemonRebuilder } from '../../src/node/daemon/index.js'
import { TOPICS, type P2PNode } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { WorkInit } from '../../src/node/work/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { signNotice } from '../../src/protocol/notice.js'
import { parsePolicy, type TrustPolicy } from '../../src/protocol/policy.js'
import { targetKey } from '../../src/protocol/target.js'
import type { Announcement, Claim, Target } from '../../src/protocol/types.js'
import { LOOPBACK, startRawPeer, verdictsOf, waitFor } from './helpers.js'

// Real daemons on loopback (p2p, gossip, stores, schedulers); the rebuild engine is a stand-in
// that "builds" for a set time on an engine of its own, so four nodes are four engines.
const REPO = 'https://example.org/shared/work'
const COMMIT = '89abcdef0123456789abcdef0123456789abcdef'
const DIGEST = `sha256:${'ab'.repeat(32)}`

function fakeRebuilder (engineId: string, opts: { buildMs: number, hang?: () => boolean, builds: string[], started?: string[] }): DaemonRebuilder {
  const environment = { engine: { name: 'docker' as const, version: '26.1.5', id: engineId }, buildx: '0.13.1', buildkit: 'v0.13.2', kernel: '6.1.0', arch: 'amd64', tool: { name: 'neko-rebuilder', version: '0.0.0-test' } }
  return {
    capabilities: async () => ({ platforms: [{ platform: 'linux/amd64', emulated: false }], nvidia: false, environment }),
    async rebuild (req, { signal }) {
      const target: Target = { repository: req.repository, commit: req.expectedCommit!, variant: req.variant!, platform: req.platform!, ...(req.ref != null ? { tag: req.ref } : {}) }
      signal?.throwIfAborted()
      opts.started?.push(targetKey(target))
      const startedOn = new Date().toISOString()
      const ms = opts.hang?.() === true ? 3_600_000 : opts.buildMs
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, ms)
        signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason) }, { once: true })
      })
      opts.builds.push(targetKey(target))
      const claim: Claim = {
        target,
        sourceDateEpoch: 1735689600,
        recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` },
        environment: { ...environment, emulated: false },
        startedOn,
        finishedOn: new Date().toISOString(),
        result: { indexDigest: DIGEST, manifestDigest: DIGEST, configDigest: DIGEST, diffIds: [DIGEST], layerSteps: ['RUN true'] }
      }
      return { claim }
    }
  }
}

interface Node { daemon: Daemon, identity: SigningIdentity, builds: string[] }

describe('shared work across real daemons on loopback', () => {
  let root: string | undefined
  const nodes: Node[] = []
  const raws: P2PNode[] = []

  afterEach(async () => {
    for (const n of nodes.splice(0)) await n.daemon.stop().catch(() => {})
    for (const r of raws.splice(0)) await r.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
    root = undefined
  })

  async function network (n: number, policyOf: (ids: SigningIdentity[], announcer: SigningIdentity) => TrustPolicy, opts: { buildMs: number, work?: (i: number) => WorkInit, hang?: (i: number) => boolean }): Promise<{ announcer: SigningIdentity, policy: TrustPolicy }> {
    root = await mkdtemp(join(tmpdir(), 'neko-work-'))
    const ids = Array.from({ length: n }, () => generateIdentity())
    const announcer = generateIdentity()
    const policy = policyOf(ids, announcer)
    for (let i = 0; i < n; i++) {
      const builds: string[] = []
      const store = await createStore({}, { path: join(root, `n${i}`) })
      const daemon = await createDaemon({ identity: ids[i]!, store, policy, rebuilder: fakeRebuilder(`ENGINE-${i}`, { buildMs: opts.buildMs, builds, hang: () => opts.hang?.(i) === true }) }, {
        listen: [LOOPBACK],
        bootstrap: nodes.map(x => x.daemon.multiaddrs()[0]!),
        mdns: false,
        gossip: { heartbeatIntervalMs: 100 },
        backoffMs: 200,
        work: { stepMs: 600, noticeTtlMs: 3_000, defaultExpectedMs: opts.buildMs, ...opts.work?.(i) }
      })
      await daemon.start()
      nodes.push({ daemon, identity: ids[i]!, builds })
    }
    await waitFor('every node knows every builder and the notice mesh', () => nodes.every(x => x.daemon.builders().length === n && (x.daemon.p2p.stats().mesh[TOPICS.notices] ?? 0) >= 1), 30_000)
    return { announcer, policy }
  }

  const policyJson = (ids: SigningIdentity[], announcer: SigningIdentity, threshold: number, extra: Record<string, unknown> = {}): TrustPolicy => parsePolicy({
    version: 1,
    builders: ids.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'bot', publicKey: announcer.publicKeyPem }],
    threshold,
    minOperators: 1,
    allowedDissent: 0,
    ...extra
  })

  function release (variants: string[]): Announcement {
    return { repository: REPO, tag: 'v1.0.0', commit: COMMIT, recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` }, targets: variants.map(v => ({ variant: v, platform: 'linux/amd64' })), announcedAt: new Date().toISOString() }
  }
  const keyOf = (variant: string): string => targetKey({ repository: REPO, commit: COMMIT, variant, platform: 'linux/amd64' })
  const buildsOf = (variant: string): number => nodes.filter(x => x.builds.includes(keyOf(variant))).length

  it('four nodes share six targets: each gets r = threshold + 1 builds (or fewer once settled), not four, and every verdict is reached', async () => {
    const variants = ['a', 'b', 'c', 'd', 'e', 'f']
    const { announcer } = await network(4, (ids, a) => policyJson(ids, a, 2), { buildMs: 800 })
    await nodes[0]!.daemon.announce(signAnnouncement(release(variants), announcer))
    await waitFor('every target reproducible on every node', async () => {
      for (const x of nodes) {
        const v = await verdictsOf(x.daemon, REPO, COMMIT)
        if (v.length !== variants.length || v.some(t => t.status !== 'reproducible')) return false
      }
      return true
    }, 60_000)
    // Let any build still running finish, so what is counted is final.
    await waitFor('no build running', () => nodes.every(x => x.daemon.scheduler.running().length === 0), 20_000)
    for (const v of variants) {
      expect(buildsOf(v), `builds of ${v}`).toBeGreaterThanOrEqual(2)
      expect(buildsOf(v), `builds of ${v}`).toBeLessThanOrEqual(3)
    }
    const total = nodes.reduce((s, x) => s + x.builds.length, 0)
    expect(total).toBeLessThanOrEqual(3 * variants.length)
    // Work spread: no node built everything.
    for (const x of nodes) expect(x.builds.length).toBeLessThan(variants.length)
    // What a node did not build it reports as covered by others.
    for (const x of nodes) {
      await waitFor('every job done or covered', async () => (await x.daemon.store.listJobs()).every(j => j.state === 'done' || j.state === 'covered'), 10_000)
      const jobs = await x.daemon.store.listJobs()
      expect(jobs.filter(j => j.state === 'done').length).toBe(x.builds.length)
      expect(jobs.filter(j => j.state === 'covered').length + x.builds.length).toBe(variants.length)
    }
  })

  it('a taker that dies mid-build (gone from the network, no withdrawal) is replaced once its notice expires', async () => {
    let hung: number | undefined
    const { announcer } = await network(3, (ids, a) => policyJson(ids, a, 1, { buildsPerTarget: 1 }), {
      buildMs: 300,
      // The first node to start a build hangs in it.
      hang: (i) => { hung ??= i; return hung === i }
    })
    await nodes[0]!.daemon.announce(signAnnouncement(release(['only']), announcer))
    await waitFor('a node to take the target', () => hung !== undefined, 20_000)
    const dead = nodes[hung!]!
    const survivors = nodes.filter(x => x !== dead)
    // Its notice holds the target: nobody else builds while it lives (r = 1).
    await new Promise(resolve => setTimeout(resolve, 1_500))
    expect(survivors.flatMap(x => x.builds)).toEqual([])
    // It vanishes without a word: the process hangs in the build, its network is gone.
    const gone = Date.now()
    await dead.daemon.p2p.stop()
    await waitFor('a survivor to build it', () => survivors.some(x => x.builds.length === 1), 20_000)
    // Not before the notice (3 s, renewed at half of it) could expire.
    expect(Date.now() - gone).toBeGreaterThan(1_000)
    expect(survivors.flatMap(x => x.builds)).toEqual([keyOf('only')])
    for (const x of survivors) {
      await waitFor('the verdict on every survivor', async () => (await verdictsOf(x.daemon, REPO, COMMIT))[0]?.status === 'reproducible', 20_000)
    }
  }, 60_000)

  it('a taker that is stopped withdraws its notice: the next node takes the target at once, not after the notice\'s life', async () => {
    let hung: number | undefined
    const { announcer } = await network(3, (ids, a) => policyJson(ids, a, 1, { buildsPerTarget: 1 }), {
      buildMs: 300,
      hang: (i) => { hung ??= i; return hung === i },
      work: () => ({ noticeTtlMs: 120_000 })
    })
    await nodes[0]!.daemon.announce(signAnnouncement(release(['only']), announcer))
    await waitFor('a node to take the target', () => hung !== undefined, 20_000)
    const leaving = nodes[hung!]!
    const survivors = nodes.filter(x => x !== leaving)
    await new Promise(resolve => setTimeout(resolve, 1_000))
    expect(survivors.flatMap(x => x.builds)).toEqual([])
    const stopped = Date.now()
    await leaving.daemon.stop()
    await waitFor('a survivor to build it', () => survivors.some(x => x.builds.length === 1), 20_000)
    expect(Date.now() - stopped).toBeLessThan(60_000)
  }, 60_000)

  it('--build-all builds every target though others\' notices cover them; the sharing nodes leave them to it', async () => {
    const variants = ['a', 'b', 'c', 'd']
    const { announcer } = await network(3, (ids, a) => policyJson(ids, a, 1, { buildsPerTarget: 1 }), { buildMs: 300, work: (i) => i === 2 ? { buildAll: true } : {} })
    await nodes[0]!.daemon.announce(signAnnouncement(release(variants), announcer))
    await waitFor('the build-all node to build everything', () => nodes[2]!.builds.length === variants.length, 30_000)
    await waitFor('no build running', () => nodes.every(x => x.daemon.scheduler.running().length === 0), 20_000)
    // r = 1: each target got the build-all node's build, and at most one more from a sharing node that took it first.
    for (const v of variants) expect(buildsOf(v)).toBeLessThanOrEqual(2)
  }, 60_000)
})

describe('shared work: notices from strangers and bad notices', () => {
  let root: string | undefined
  const daemons: Daemon[] = []
  let raw: P2PNode | undefined
  let bad: P2PNode | undefined

  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop().catch(() => {})
    await raw?.stop().catch(() => {})
    await bad?.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
    root = undefined
  })

  it('Sybil notices for every target do not stop a build; forged and expired notices are refused and cost the sender', async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-sybil-'))
    const me = generateIdentity()
    const announcer = generateIdentity()
    const policy = parsePolicy({ version: 1, builders: [{ name: 'me', operator: 'me', publicKey: me.publicKeyPem }], announcers: [{ name: 'bot', publicKey: announcer.publicKeyPem }], threshold: 1, minOperators: 1, allowedDissent: 0, buildsPerTarget: 1 })
    const builds: string[] = []
    const store = await createStore({}, { path: join(root, 'n0') })
    const d = await createDaemon({ identity: me, store, policy, rebuilder: fakeRebuilder('ENGINE-ME', { buildMs: 200, builds }) }, { listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100 }, work: { stepMs: 600, noticeTtlMs: 3_000 } })
    await d.start()
    daemons.push(d)
    raw = await startRawPeer()
    await raw.dial(d.multiaddrs()[0]!)
    await waitFor('the raw peer in the notice mesh', () => (raw!.stats().mesh[TOPICS.notices] ?? 0) >= 1, 20_000)
    const variants = ['a', 'b', 'c']
    const now = Date.now()
    const iso = (ms: number): string => new Date(ms).toISOString()
    // Paced under the per-peer gossip rate.
    // Twenty Sybil keys each say they build every target, on engines of their own.
    for (let s = 0; s < 20; s++) {
      const sybil = generateIdentity()
      for (const v of variants) {
        const target = { repository: REPO, commit: COMMIT, variant: v, platform: 'linux/amd64', tag: 'v1.0.0' }
        await new Promise(resolve => setTimeout(resolve, 110))
        await raw.publish(TOPICS.notices, Buffer.from(JSON.stringify(signNotice({ target, engineId: `SYBIL-${s}`, expectedMs: 3_600_000, startedAt: iso(now), issuedAt: iso(now), expiresAt: iso(now + 600_000) }, sybil))))
      }
    }
    await waitFor('the Sybil notices judged', () => d.stats().gossip.accepted >= 60, 20_000)
    // Bad notices come from a second peer.
    bad = await startRawPeer()
    await bad.dial(d.multiaddrs()[0]!)
    await waitFor('the second peer in the notice mesh', () => (bad!.stats().mesh[TOPICS.notices] ?? 0) >= 1, 20_000)
    const before = d.stats().gossip.rejected
    // A trusted builder's notice forged (a signature that is not its key's), one long expired, one oversized.
    const honest = signNotice({ target: { repository: REPO, commit: COMMIT, variant: 'a', platform: 'linux/amd64' }, engineId: 'X', expectedMs: 1000, startedAt: iso(now), issuedAt: iso(now), expiresAt: iso(now + 60_000) }, me)
    const forged = { ...honest, signatures: [{ ...honest.signatures[0]!, sig: Buffer.alloc(64, 1).toString('base64') }] }
    await bad.publish(TOPICS.notices, Buffer.from(JSON.stringify(forged)))
    await bad.publish(TOPICS.notices, Buffer.from(JSON.stringify(signNotice({ target: { repository: REPO, commit: COMMIT, variant: 'b', platform: 'linux/amd64' }, engineId: 'X', expectedMs: 1000, startedAt: iso(now - 900_000), issuedAt: iso(now - 900_000), expiresAt: iso(now - 600_000) }, me))))
    // Over the notice limit (4 KiB), though well under the gossip message limit.
    await bad.publish(TOPICS.notices, Buffer.from(JSON.stringify({ ...honest, payload: Buffer.alloc(4096, 1).toString('base64') })))
    await waitFor('the three bad notices refused', () => d.stats().gossip.rejected >= before + 3, 10_000)
    await waitFor('the sender\'s score to drop', () => d.p2p.score(bad!.peerId) < 0, 10_000)
    await d.announce(signAnnouncement({ repository: REPO, tag: 'v1.0.0', commit: COMMIT, recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` }, targets: variants.map(v => ({ variant: v, platform: 'linux/amd64' })), announcedAt: new Date().toISOString() }, announcer))
    await waitFor('every target built here', () => builds.length === variants.length, 20_000)
    expect(builds.sort()).toEqual(variants.map(v => targetKey({ repository: REPO, commit: COMMIT, variant: v, platform: 'linux/amd64' })).sort())
  }, 60_000)

  it('a trusted taker whose notices lapse holds its targets only until they expire, then is reported in /api/v1/jobs', async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-lapse-'))
    const me = generateIdentity()
    const ghost = generateIdentity()
    const announcer = generateIdentity()
    const policy = parsePolicy({ version: 1, builders: [{ name: 'me', operator: 'me', publicKey: me.publicKeyPem }, { name: 'ghost', operator: 'ghost', publicKey: ghost.publicKeyPem }], announcers: [{ name: 'bot', publicKey: announcer.publicKeyPem }], threshold: 1, minOperators: 1, allowedDissent: 0, buildsPerTarget: 1 })
    const builds: string[] = []
    const store = await createStore({}, { path: join(root, 'n0') })
    const d = await createDaemon({ identity: me, store, policy, rebuilder: fakeRebuilder('ENGINE-ME', { buildMs: 100, builds }) }, { listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100 }, http: { host: '127.0.0.1', port: 0 }, work: { stepMs: 600, noticeTtlMs: 3_000 } })
    await d.start()
    daemons.push(d)
    raw = await startRawPeer()
    await raw.dial(d.multiaddrs()[0]!)
    await waitFor('the raw peer in the notice mesh', () => (raw!.stats().mesh[TOPICS.notices] ?? 0) >= 1, 20_000)
    // The ghost, a builder the policy trusts, takes both targets and is never heard of again.
    const now = Date.now()
    const expires = now + 4_000
    const iso = (ms: number): string => new Date(ms).toISOString()
    for (const v of ['a', 'b']) {
      await raw.publish(TOPICS.notices, Buffer.from(JSON.stringify(signNotice({ target: { repository: REPO, commit: COMMIT, variant: v, platform: 'linux/amd64', tag: 'v1.0.0' }, engineId: 'GHOST', expectedMs: 600_000, startedAt: iso(now), issuedAt: iso(now), expiresAt: iso(expires) }, ghost))))
    }
    await waitFor('both notices kept', () => d.stats().gossip.accepted >= 2, 10_000)
    await d.announce(signAnnouncement({ repository: REPO, tag: 'v1.0.0', commit: COMMIT, recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` }, targets: ['a', 'b'].map(v => ({ variant: v, platform: 'linux/amd64' })), announcedAt: new Date().toISOString() }, announcer))
    await waitFor('both targets built once the notices expired', () => builds.length === 2, 20_000)
    expect(Date.now()).toBeGreaterThanOrEqual(expires)
    type View = { lapsedTakers: Array<{ keyId: string, name: string, lapsed: number }>, counts: { done: number } }
    let view: View | undefined
    await waitFor('both jobs done', async () => { view = await (await fetch(`${d.httpUrl()!}/api/v1/jobs`)).json() as View; return view.counts.done === 2 }, 10_000)
    if (view == null) throw new Error('no jobs view')
    expect(view.lapsedTakers).toEqual([expect.objectContaining({ keyId: ghost.keyId, name: 'ghost', lapsed: 2 })])
  }, 60_000)
})
