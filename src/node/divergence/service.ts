import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { entriesDigestOf, fitReport, REPORT_LIMITS, signDivergenceReport, signFileManifestHeader, type DivergenceReport } from '../../protocol/divergence-report.js'
import type { Digest } from '../../protocol/types.js'
import { diffManifests, explainFromOwnBytes, type FileManifest, type ManifestDiff } from '../compare/index.js'
import type { Logger } from '../logger.js'
import { peerIdOf } from '../p2p/identity.js'
import type { FetchedManifest, ManifestSource, P2PNode } from '../p2p/index.js'
import type { Store, StoredClaim } from '../store/types.js'
import type { Follower } from '../follow/index.js'
import type { ManifestKeeper } from './keeper.js'
import type { OutputKeeper } from './outputs.js'
import { hasReport, saveReport, type StoredReport } from './reports.js'

export interface DivergenceServiceComponents {
  store: Store
  p2p: Pick<P2PNode, 'fileManifest'> & Partial<Pick<P2PNode, 'connectedPeers'>>
  identity: SigningIdentity
  keeper: ManifestKeeper
  /** This node's kept OCI outputs: where one is kept, its bytes name causes the manifests cannot. */
  outputs?: OutputKeeper
  policy: () => TrustPolicy
  log: Logger
}

export interface DivergenceServiceInit {
  /** Tries per dissenting claim when its builder cannot be reached. Default 3. */
  attempts?: number
  /** Delay before the next try; doubled each time. Default 5 s. */
  retryDelayMs?: number
}

export interface DivergenceService {
  /** Tells the service of a claim the node stored (own or a peer's). */
  claimStored: (claim: StoredClaim) => void
  /**
   * Reads the stored claims from its cursor (src/node/follow): a dissent found is kept as
   * pending in the store before the cursor moves past its claim, until its report is signed
   * or its fetches are given up, so a restart resumes it.
   */
  follower: Follower
  /** Resumes the comparisons pending when the node last stopped. */
  start: () => Promise<void>
  /** Serves this node's kept manifests over the file manifest protocol. */
  manifestSource: ManifestSource
  /** Settles when nothing is queued. */
  idle: () => Promise<void>
  stop: () => void
  /** Reports signed by this service since start. */
  onReport: (cb: (r: StoredReport) => void) => void
}

/** The entry bodies a manifest is sent as, in order (docs/network.md). */
export function manifestEntryBodies (m: FileManifest): Uint8Array[] {
  const out: Uint8Array[] = []
  m.layers.forEach((l, layer) => {
    for (const e of l.entries) {
      out.push(Buffer.from(JSON.stringify({
        layer, path: e.path, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime,
        ...(e.linkname != null ? { linkname: e.linkname } : {}),
        ...(e.sha256 != null ? { sha256: e.sha256 } : {})
      }), 'utf8'))
    }
  })
  return out
}

/** A fetched manifest in the shape `diffManifests` reads. */
export function fileManifestFrom (f: FetchedManifest): FileManifest {
  const layers: FileManifest['layers'] = f.header.layers.map(l => ({ diffId: l.diffId, ...(l.step != null ? { step: l.step } : {}), entries: [] }))
  for (const { layer, ...e } of f.entries) layers[layer]!.entries.push(e)
  return { platform: f.header.platform, manifestDigest: f.header.manifestDigest, layers }
}

/** Comparisons found and not yet reported or given up: (own claim id, dissenting claim id). */
const PENDING_KEY = 'divergence-pending'
/** Pending comparisons kept at most; beyond it the oldest is dropped (it is found again only by a new claim). */
const MAX_PENDING = 1000
type Pair = [string, string]
/** Retry delays a resumed comparison waits at most for its builder to connect. */
const RESUME_WAIT_STEPS = 6

function isPairs (v: unknown): v is Pair[] {
  return Array.isArray(v) && v.every(p => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string')
}

function cut (s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s
}

/**
 * Finds out why builders disagree without moving an image: when a target this node built
 * has a trusted claim of another digest, it fetches that builder's signed file manifest,
 * compares it with its own, and stores a signed divergence report naming both claims.
 */
export function createDivergenceService (components: DivergenceServiceComponents, init: DivergenceServiceInit = {}): DivergenceService {
  const { store, keeper, identity, log } = components
  const attempts = init.attempts ?? 3
  const retryDelayMs = init.retryDelayMs ?? 5_000
  const listeners: Array<(r: StoredReport) => void> = []
  const timers = new Set<NodeJS.Timeout>()
  const inFlight = new Set<string>()
  let queue: Promise<void> = Promise.resolve()
  let stopped = false
  let pending: Pair[] = []
  // Pending writes in order; each is durable before what it records moves on.
  let saving: Promise<void> = Promise.resolve()

  async function savePending (change: (pairs: Pair[]) => Pair[]): Promise<void> {
    const run = saving.then(async () => {
      pending = change(pending).slice(-MAX_PENDING)
      await store.setState(PENDING_KEY, pending)
    })
    saving = run.catch(() => undefined)
    await run
  }
  const samePair = (a: Pair, b: Pair): boolean => a[0] === b[0] && a[1] === b[1]
  function settled (own: StoredClaim, other: StoredClaim): void {
    const pair: Pair = [own.id, other.id]
    savePending(pairs => pairs.filter(p => !samePair(p, pair))).catch((err: unknown) => { log.warn({ err }, 'recording a settled comparison failed') })
  }

  function enqueue (fn: () => Promise<void>): void {
    queue = queue.then(fn).catch((err: unknown) => { log.warn({ err }, 'explaining a divergence failed') })
  }

  async function examine (m: StoredClaim): Promise<void> {
    if (m.claim.result == null) return
    const key = targetKey(m.claim.target)
    const all = await store.claimsForTarget(key)
    const own = all.find(c => c.keyId === identity.keyId && c.claim.result != null)
    const ownDigest = own?.claim.result?.manifestDigest
    if (own == null || ownDigest == null) return
    const policy = components.policy()
    const dissent: StoredClaim[] = []
    for (const other of all) {
      const digest = other.claim.result?.manifestDigest
      if (other.keyId === identity.keyId || digest == null || digest === ownDigest || !policy.builderKeys.has(other.keyId)) continue
      if (await hasReport(store, own.id, other.id)) continue
      dissent.push(other)
    }
    // The kept manifest is read only when some trusted builder disagrees: agreement, the usual case, costs no read.
    if (dissent.length === 0) return
    const kept = await keeper.get(ownDigest)
    if (kept == null) return
    const fresh = dissent.map(other => [own.id, other.id] satisfies Pair)
    await savePending(pairs => [...pairs.filter(p => !fresh.some(f => samePair(f, p))), ...fresh])
    for (const other of dissent) startFetch(own, other, kept.manifest, 1)
  }

  function startFetch (own: StoredClaim, other: StoredClaim, mine: FileManifest, attempt: number): void {
    const pair = `${own.id} ${other.id}`
    if (stopped || inFlight.has(pair)) return
    inFlight.add(pair)
    enqueue(async () => {
      try {
        await compare(own, other, mine)
        settled(own, other)
      } catch (err) {
        if (stopped) return
        if (attempt >= attempts) {
          log.warn({ err, claim: other.id }, 'gave up fetching a dissenting builder\'s file manifest')
          settled(own, other)
          return
        }
        const t = setTimeout(() => { timers.delete(t); startFetch(own, other, mine, attempt + 1) }, retryDelayMs * 2 ** (attempt - 1))
        t.unref()
        timers.add(t)
        log.info({ err: (err as Error).message, claim: other.id, attempt }, 'file manifest fetch failed; will try again')
      } finally {
        inFlight.delete(pair)
      }
    })
  }

  async function compare (own: StoredClaim, other: StoredClaim, mine: FileManifest): Promise<void> {
    // Stored claims were verified against the policy: the key is the policy's, no need to verify again.
    const key = components.policy().builderKeys.get(other.keyId)
    if (key === undefined) throw new Error(`${other.keyId} is no longer a builder of the policy`)
    const peer = peerIdOf(key)
    const digest = other.claim.result!.manifestDigest
    const fetched = await components.p2p.fileManifest(peer, digest, { keys: new Map([[other.keyId, key]]) })
    if (fetched.keyId !== other.keyId) throw new Error(`manifest signed by ${fetched.keyId}, the claim by ${other.keyId}`)
    if (targetKey(fetched.header.target) !== targetKey(other.claim.target)) throw new Error('the manifest names another target')
    const theirs = fileManifestFrom(fetched)
    let d: ManifestDiff & { evidence?: Map<string, string[]> } = diffManifests(mine, theirs)
    const tar = d.paths.explained < d.paths.total ? await components.outputs?.get(own.claim.result!.manifestDigest) : undefined
    if (tar != null) {
      const plain = d
      d = await explainFromOwnBytes(d, tar, mine.platform).catch((err: unknown) => { log.warn({ err, tar }, 'could not read this node\'s kept output; causes from manifests alone'); return plain })
    }
    const stepOf = new Map(d.layers.map(l => [l.index, l.step]))
    const report: DivergenceReport = fitReport({
      target: own.claim.target,
      a: { claimId: own.id, keyId: own.keyId, manifestDigest: own.claim.result!.manifestDigest },
      b: { claimId: other.id, keyId: other.keyId, manifestDigest: digest },
      paths: d.paths,
      causes: d.causes.slice(0, REPORT_LIMITS.causes).map(g => ({
        id: g.cause.id,
        summary: g.cause.summary,
        fix: g.cause.fix,
        count: g.count,
        layers: g.layers.slice(0, REPORT_LIMITS.layers),
        steps: [...new Set(g.layers.map(i => stepOf.get(i)).filter((s): s is string => s != null))].slice(0, REPORT_LIMITS.stepsPerCause).map(s => cut(s, REPORT_LIMITS.stepLength)),
        paths: g.paths.slice(0, REPORT_LIMITS.pathsPerCause).map(p => cut(p, REPORT_LIMITS.pathLength)),
        ...(d.evidence?.has(g.cause.id) === true ? { evidence: d.evidence.get(g.cause.id)!.slice(0, REPORT_LIMITS.evidencePerCause).map(e => cut(e, REPORT_LIMITS.evidenceLength)) } : {})
      })),
      layers: d.layers.slice(0, REPORT_LIMITS.layers).map(l => ({ index: l.index, ...(l.step != null ? { step: cut(l.step, REPORT_LIMITS.stepLength) } : {}), causeCounts: l.causeCounts })),
      fetched: { entries: fetched.entries.length, bytes: fetched.bytes },
      createdAt: new Date().toISOString()
    })
    const envelopeJson = JSON.stringify(signDivergenceReport(report, identity))
    const stored = await saveReport(store, envelopeJson, report, identity.keyId)
    log.info({ target: targetKey(report.target), dissent: other.keyId, paths: report.paths, causes: report.causes.map(c => `${c.count} ${c.id}`), entries: fetched.entries.length, bytes: fetched.bytes }, 'divergence report signed')
    for (const cb of listeners) cb(stored)
  }

  const manifestSource: ManifestSource = async (digest: Digest) => {
    const kept = await keeper.get(digest)
    if (kept == null) return undefined
    const bodies = manifestEntryBodies(kept.manifest)
    const header = signFileManifestHeader({
      target: kept.target,
      manifestDigest: kept.manifestDigest,
      platform: kept.manifest.platform,
      layers: kept.manifest.layers.map(l => ({ diffId: l.diffId, ...(l.step != null ? { step: l.step } : {}), entries: l.entries.length })),
      entries: bodies.length,
      entriesDigest: entriesDigestOf(bodies)
    }, identity)
    return { header: Buffer.from(JSON.stringify(header), 'utf8'), entries: bodies }
  }

  /** A pending comparison after a restart: both claims and this node's kept manifest are read again. */
  async function resume ([ownId, otherId]: Pair): Promise<void> {
    const [own, other] = [await store.getMessage(ownId), await store.getMessage(otherId)]
    const kept = own?.kind === 'claim' && own.claim.result != null ? await keeper.get(own.claim.result.manifestDigest) : undefined
    if (own?.kind !== 'claim' || other?.kind !== 'claim' || kept == null || await hasReport(store, ownId, otherId)) {
      await savePending(pairs => pairs.filter(p => !samePair(p, [ownId, otherId])))
      return
    }
    // Just after a restart the builder is not connected yet, and a dial by peer id alone
    // would hold up the connection being made: wait for it a while first.
    const key = components.policy().builderKeys.get(other.keyId)
    const peer = key !== undefined ? peerIdOf(key) : undefined
    for (let waited = 0; peer !== undefined && components.p2p.connectedPeers != null && !components.p2p.connectedPeers().includes(peer) && waited < RESUME_WAIT_STEPS && !stopped; waited++) {
      await new Promise(resolve => { const t = setTimeout(resolve, retryDelayMs); t.unref() })
    }
    startFetch(own, other, kept.manifest, 1)
  }

  return {
    claimStored (claim) {
      if (stopped) return
      enqueue(async () => { await examine(claim) })
    },
    follower: {
      name: 'divergence',
      kinds: ['claim'],
      async apply (page) {
        for (const m of page) if (m.kind === 'claim' && !stopped) await examine(m)
      }
    },
    async start () {
      stopped = false
      const saved = await store.getState(PENDING_KEY)
      pending = isPairs(saved) ? saved.slice(-MAX_PENDING) : []
      if (pending.length > 0) log.info({ pending: pending.length }, 'resuming divergence comparisons left pending')
      // In the background: the node starts without waiting for builders to connect.
      void Promise.all(pending.map(async pair => { await resume(pair) })).catch((err: unknown) => { log.warn({ err }, 'resuming divergence comparisons failed') })
    },
    manifestSource,
    idle: async () => { await queue },
    stop () {
      stopped = true
      for (const t of timers) clearTimeout(t)
      timers.clear()
    },
    onReport (cb) { listeners.push(cb) }
  }
}
