import type { IncomingMessage, ServerResponse } from 'node:http'
import { WIRE } from '../../protocol/patterns.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Metrics } from '../metrics.js'
import type { MessageFilter, Store, StoredMessage } from '../store/types.js'
import type { ConsensusService } from '../consensus/service.js'
import { targetIndexKey } from '../store/target-index.js'
import type { DashboardAsset } from './dashboard.js'
import { NotFoundError } from './errors.js'
import { buildJsonFeed } from './feed.js'
import { HTTP_LIMITS } from './limits.js'
import { streamEnvelopes } from './jsonl.js'
import { KEY_ID_PATTERN, Query, REPOSITORY_PATTERN } from './query.js'
import { createResponseCache } from './cache.js'
import { prepareJson, sendBody, sendJson, sendPrepared, type Prepared } from './respond.js'
import { createNetworkLogRoutes, createTlogRoutes, NETWORK_LOG_PREFIX, TLOG_PREFIX, type TlogRouteContext } from './tlog-routes.js'
import type { NetworkLog } from '../tlog/network-log.js'
import { listReports, reportsVersion, type ReportFilter } from '../divergence/reports.js'
import { DEFAULT_RECENT_JOBS } from '../scheduler/jobs-view.js'
import type { CatchUp, DivergencesResponse, HealthResponse, JobsResponse } from './api.js'

export type { CatchUp } from './api.js'
import { listTestResults, type TestResultFilter } from '../test-results/index.js'

export interface RouteContext {
  store: Store
  metrics?: Metrics
  builders?: () => unknown[]
  /** This node's reachability and connections (`/api/v1/peers`); absent where no daemon runs. */
  peers?: () => unknown
  /** The build queue (`/api/v1/jobs`); absent where no daemon runs. */
  jobs?: (opts: { recent: number }) => Promise<JobsResponse>
  /** This node's host health, beside the builders; absent where no daemon runs. */
  host?: () => unknown
  consensus: ConsensusService
  /** The node's policy: a release's feed carries every claim its builders signed. */
  policy?: TrustPolicy
  dashboard: Map<string, DashboardAsset>
  /** Whether verdicts include registry lookups (which change outside the store). */
  published?: boolean
  /** The node's transparency log, served under /tlog/. */
  tlog?: TlogRouteContext
  /** How far back-fill is behind the node's peers, for `/healthz`. */
  catchUp?: () => CatchUp
  /** The network log (`join --network-log`), served under /network-log/. */
  networkLog?: Pick<NetworkLog, 'checkpoint' | 'tile'>
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>
type Producer = (req: IncomingMessage, url: URL) => Promise<Prepared & { immutable?: boolean }>

/** The server's own base URL as the client named it, for absolute links in the feed. */
function baseUrl (req: IncomingMessage): string | undefined {
  const host = req.headers.host
  return host !== undefined && /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? `http://${host}` : undefined
}

const CONSENSUS_PREFIX = '/api/v1/consensus/'

/** One public view of a stored claim: the decoded claim, who signed it and when it arrived. */
function claimView (m: StoredMessage): Record<string, unknown> {
  return { id: m.id, cursor: m.cursor, keyId: m.keyId, receivedAt: m.receivedAt, claim: m.kind === 'claim' ? m.claim : undefined }
}

function tagParam (q: Query): string | undefined {
  return q.string('tag', WIRE.tag, 'a tag name (letters, digits, . _ + - /; at most 256)')
}

function repositoryParam (q: Query): string | undefined {
  return q.string('repository', REPOSITORY_PATTERN, 'a repository URL without spaces')
}

export function createRoutes (ctx: RouteContext): { dispatch: Handler } {
  const { store } = ctx
  // Published digests change outside the store: with a registry lookup, reuse answers for a minute at most.
  const cache = createResponseCache(ctx.published ? { maxAgeMs: 60_000 } : {})

  const claims: Producer = async (_req, url) => {
    const q = new Query(url.searchParams, ['cursor', 'limit', 'repository', 'tag', 'commit', 'builder'])
    const cursor = q.integer('cursor', 0)
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: MessageFilter = { kind: 'claim' }
    const repository = repositoryParam(q)
    const tag = tagParam(q)
    const commit = q.string('commit', WIRE.commit, 'a full commit id (40 lowercase hex)')
    const builder = q.string('builder', KEY_ID_PATTERN, 'a key id')
    if (repository !== undefined) filter.repository = repository
    if (tag !== undefined) filter.tag = tag
    if (commit !== undefined) filter.commit = commit
    if (builder !== undefined) filter.keyId = builder
    const page = limit === 0 ? { items: [], next: cursor } : await store.messagesSince(cursor, limit, filter)
    // A filtered scan can stop early with a short page: ask the cursor index whether anything lies beyond.
    const more = page.next > cursor && (page.items.length >= limit || (await store.messagesSince(page.next, 1)).items.length > 0)
    const headers: Record<string, string> = {}
    if (more) {
      const nextUrl = new URLSearchParams(url.searchParams)
      nextUrl.set('cursor', String(page.next))
      headers.Link = `<${url.pathname}?${nextUrl.toString()}>; rel="next"`
    }
    // A full page of the append-only log never changes: cache it for good.
    return { ...prepareJson({ items: page.items.map(claimView), next: String(page.next), more }, { headers }), immutable: page.items.length >= limit && limit > 0 }
  }

  const releases: Producer = async (_req, url) => {
    const q = new Query(url.searchParams, ['repository', 'tag', 'limit'])
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: { repository?: string, tag?: string } = {}
    const repository = repositoryParam(q)
    const tag = tagParam(q)
    if (repository !== undefined) filter.repository = repository
    if (tag !== undefined) filter.tag = tag
    return prepareJson({ items: (await ctx.consensus.releases(filter)).slice(0, limit) })
  }

  const targets: Producer = async (_req, url) => {
    const q = new Query(url.searchParams, ['repository', 'commit'])
    const repository = repositoryParam(q)
    const commit = q.string('commit', WIRE.commit, 'a full commit id (40 lowercase hex)')
    const items = (await store.targets())
      .filter(t => (repository === undefined || t.repository === repository) && (commit === undefined || t.commit === commit))
      .map(t => ({ key: targetIndexKey(t), ...t }))
    return prepareJson({ items })
  }

  const consensus: Producer = async (_req, url) => {
    const q = new Query(url.searchParams, ['repository'])
    let tag: string
    try {
      tag = decodeURIComponent(url.pathname.slice(CONSENSUS_PREFIX.length))
    } catch {
      tag = ''
    }
    if (!WIRE.tag.test(tag)) throw new NotFoundError(`no such tag: ${JSON.stringify(tag.slice(0, 200))}`)
    const repository = repositoryParam(q)
    const result = await ctx.consensus.forTag(tag, repository !== undefined ? { repository } : {})
    if (result === undefined) {
      throw new NotFoundError(`no announcement of tag ${tag}${repository !== undefined ? ` in ${repository}` : ''} is stored on this node`)
    }
    return prepareJson(result)
  }

  const builders: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    // Live state of the daemon, not of the store: never cached.
    sendJson(req, res, { items: ctx.builders?.() ?? [], ...(ctx.host != null ? { host: ctx.host() } : {}) })
  }

  const peers: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    // A server with no p2p node behind it (a published feed) says so, as /tlog/split-views does.
    sendJson(req, res, ctx.peers?.() ?? { peerId: null, peers: [] }, { cacheControl: 'no-store' })
  }

  const jobs: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['limit'])
    const recent = q.integer('limit', DEFAULT_RECENT_JOBS, HTTP_LIMITS.maxPageSize)
    if (ctx.jobs == null) throw new NotFoundError('this server runs no build queue')
    // Live state of the scheduler: never cached.
    sendJson(req, res, await ctx.jobs({ recent }) satisfies JobsResponse, { cacheControl: 'no-store' })
  }

  const jsonl: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['tag', 'repository', 'inclusion'])
    const tag = tagParam(q)
    const repository = repositoryParam(q)
    // ?inclusion=1: each message followed by its log inclusion evidence, for offline witnessed verification.
    const log = q.string('inclusion', /^1$/, '1') !== undefined ? ctx.tlog?.log : undefined
    const extra = log === undefined ? undefined : async (m: StoredMessage) => { const a = await log.inclusion(m.id); return a === undefined ? '' : JSON.stringify({ tlogInclusion: a }) + '\n' }
    await streamEnvelopes(store, req, res, { tag, repository, keys: ctx.policy?.builderKeys.keys() }, extra)
  }

  const feed: Producer = async (req, url) => {
    new Query(url.searchParams, [])
    return prepareJson(await buildJsonFeed({ store, consensus: ctx.consensus }, { base: baseUrl(req) }), {
      contentType: 'application/feed+json; charset=utf-8'
    })
  }

  // Reports live beside the message log, not in it: read on each request, never cached.
  const divergences: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['repository', 'tag', 'limit'])
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: ReportFilter = {}
    const repository = repositoryParam(q)
    const tag = tagParam(q)
    if (repository !== undefined) filter.repository = repository
    if (tag !== undefined) filter.tag = tag
    const items = limit === 0 ? [] : await listReports(store, filter, limit)
    sendJson(req, res, { items: items.map(r => ({ id: r.id, keyId: r.keyId, report: r.report, envelope: JSON.parse(r.envelopeJson) as unknown })) } satisfies DivergencesResponse, { cacheControl: 'no-cache' })
  }

  // Smoke test results, like reports, live beside the message log: read on each request.
  const testResults: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['repository', 'commit', 'limit'])
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: TestResultFilter = {}
    const repository = repositoryParam(q)
    const commit = q.string('commit', WIRE.commit, 'a full commit id (40 hex)')
    if (repository !== undefined) filter.repository = repository
    if (commit !== undefined) filter.commit = commit
    const items = limit === 0 ? [] : await listTestResults(store, filter, limit)
    sendJson(req, res, { items: items.map(r => ({ id: r.id, keyId: r.keyId, testResult: r.testResult, envelope: JSON.parse(r.envelopeJson) as unknown })) }, { cacheControl: 'no-cache' })
  }

  const metrics: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    if (ctx.metrics == null) throw new NotFoundError('metrics are not enabled on this node')
    const text = await ctx.metrics.registry.metrics()
    sendBody(req, res, Buffer.from(text), { contentType: ctx.metrics.registry.contentType, cacheControl: 'no-store' })
  }

  const healthz: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    const stats = await store.stats()
    sendJson(req, res, { status: 'ok', messages: stats.messages, claims: stats.claims, announcements: stats.announcements, ...(ctx.catchUp != null ? { catchUp: ctx.catchUp() } : {}) } satisfies HealthResponse, { cacheControl: 'no-store' })
  }

  /** Serves what `produce` makes, from the cache while the store has not changed. */
  function cached (produce: Producer): Handler {
    return async (req, res, url) => {
      // The feed names its own URL (from the Host header) and lists divergence reports, which are not in the message log.
      const key = `${url.pathname}${url.search}${url.pathname === '/feed.json' ? ` ${baseUrl(req) ?? ''} ${reportsVersion(store)}` : ''}`
      // Immutable answers (full pages of the log) need no look at the store at all.
      const immutable = cache.immutable(key)
      if (immutable !== undefined) return sendPrepared(req, res, immutable)
      const version = await ctx.consensus.sync()
      const hit = cache.get(key, version)
      if (hit !== undefined) return sendPrepared(req, res, hit)
      const p = await produce(req, url)
      cache.set(key, version, p, p.immutable === true)
      sendPrepared(req, res, p)
    }
  }

  const routes = new Map<string, Handler>([
    ['/api/v1/claims', cached(claims)],
    ['/api/v1/releases', cached(releases)],
    ['/api/v1/targets', cached(targets)],
    ['/api/v1/builders', builders],
    ['/api/v1/jobs', jobs],
    ['/api/v1/peers', peers],
    ['/api/v1/divergences', divergences],
    ['/api/v1/test-results', testResults],
    ['/claims.intoto.jsonl', jsonl],
    ['/feed.json', cached(feed)],
    ['/metrics', metrics],
    ['/healthz', healthz]
  ])

  const cachedConsensus = cached(consensus)
  const tlog = createTlogRoutes(ctx.tlog)
  const networkLog = ctx.networkLog !== undefined ? createNetworkLogRoutes(ctx.networkLog) : undefined

  return {
    async dispatch (req, res, url) {
      const path = url.pathname
      const asset = ctx.dashboard.get(path === '/index.html' ? '/' : path)
      if (asset !== undefined) {
        new Query(url.searchParams, [])
        sendBody(req, res, asset.body, { contentType: asset.contentType })
        return
      }
      const route = routes.get(path)
      if (route !== undefined) return await route(req, res, url)
      if (path.startsWith(CONSENSUS_PREFIX) && path.length > CONSENSUS_PREFIX.length) return await cachedConsensus(req, res, url)
      if (path.startsWith(TLOG_PREFIX)) return await tlog(req, res, url)
      if (networkLog !== undefined && path.startsWith(NETWORK_LOG_PREFIX)) return await networkLog(req, res, url)
      throw new NotFoundError(`no route for ${path.slice(0, 200)}`)
    }
  }
}
