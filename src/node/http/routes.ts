import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Metrics } from '../metrics.js'
import type { MessageFilter, Store, StoredMessage } from '../store/types.js'
import type { ConsensusService } from '../consensus/service.js'
import { targetIndexKey } from '../store/target-index.js'
import type { DashboardAsset } from './dashboard.js'
import { NotFoundError } from './errors.js'
import { buildJsonFeed } from './feed.js'
import { HTTP_LIMITS } from './limits.js'
import { streamEnvelopes } from './jsonl.js'
import { COMMIT_PATTERN, KEY_ID_PATTERN, Query, REPOSITORY_PATTERN, TAG_PATTERN } from './query.js'
import { sendBody, sendJson } from './respond.js'

export interface RouteContext {
  store: Store
  metrics?: Metrics
  builders?: () => unknown[]
  consensus: ConsensusService
  dashboard: Map<string, DashboardAsset>
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>

const CONSENSUS_PREFIX = '/api/v1/consensus/'

/** One public view of a stored claim: the decoded claim, who signed it and when it arrived. */
function claimView (m: StoredMessage): Record<string, unknown> {
  return { id: m.id, cursor: m.cursor, keyId: m.keyId, receivedAt: m.receivedAt, claim: m.claim }
}

function tagParam (q: Query): string | undefined {
  return q.string('tag', TAG_PATTERN, 'a tag name (letters, digits, . _ + - /)')
}

function repositoryParam (q: Query): string | undefined {
  return q.string('repository', REPOSITORY_PATTERN, 'a repository URL without spaces')
}

export function createRoutes (ctx: RouteContext): { dispatch: Handler } {
  const { store } = ctx

  const claims: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['cursor', 'limit', 'repository', 'tag', 'commit', 'builder'])
    const cursor = q.integer('cursor', 0)
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: MessageFilter = { kind: 'claim' }
    const repository = repositoryParam(q)
    const tag = tagParam(q)
    const commit = q.string('commit', COMMIT_PATTERN, 'a full commit id (40 or 64 lowercase hex)')
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
    sendJson(req, res, { items: page.items.map(claimView), next: String(page.next), more }, { headers })
  }

  const releases: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['repository', 'tag', 'limit'])
    const limit = q.integer('limit', HTTP_LIMITS.defaultPageSize, HTTP_LIMITS.maxPageSize)
    const filter: { repository?: string, tag?: string } = {}
    const repository = repositoryParam(q)
    const tag = tagParam(q)
    if (repository !== undefined) filter.repository = repository
    if (tag !== undefined) filter.tag = tag
    sendJson(req, res, { items: (await ctx.consensus.releases(filter)).slice(0, limit) })
  }

  const targets: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['repository', 'commit'])
    const repository = repositoryParam(q)
    const commit = q.string('commit', COMMIT_PATTERN, 'a full commit id (40 or 64 lowercase hex)')
    const items = (await store.targets())
      .filter(t => (repository === undefined || t.repository === repository) && (commit === undefined || t.commit === commit))
      .map(t => ({ key: targetIndexKey(t), ...t }))
    sendJson(req, res, { items })
  }

  const consensus: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['repository'])
    let tag: string
    try {
      tag = decodeURIComponent(url.pathname.slice(CONSENSUS_PREFIX.length))
    } catch {
      tag = ''
    }
    if (!TAG_PATTERN.test(tag)) throw new NotFoundError(`no such tag: ${JSON.stringify(tag.slice(0, 200))}`)
    const repository = repositoryParam(q)
    const result = await ctx.consensus.forTag(tag, repository !== undefined ? { repository } : {})
    if (result === undefined) {
      throw new NotFoundError(`no announcement of tag ${tag}${repository !== undefined ? ` in ${repository}` : ''} is stored on this node`)
    }
    sendJson(req, res, result)
  }

  const builders: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    sendJson(req, res, { items: ctx.builders?.() ?? [] })
  }

  const jsonl: Handler = async (req, res, url) => {
    const q = new Query(url.searchParams, ['tag', 'repository'])
    const tag = tagParam(q)
    const repository = repositoryParam(q)
    await streamEnvelopes(store, req, res, { tag, repository })
  }

  const feed: Handler = async (req, res, url) => {
    new Query(url.searchParams, [])
    const host = req.headers.host
    const base = host !== undefined && /^[A-Za-z0-9.\-[\]:]{1,255}$/.test(host) ? `http://${host}` : undefined
    sendJson(req, res, await buildJsonFeed({ store, consensus: ctx.consensus }, { base }), {
      contentType: 'application/feed+json; charset=utf-8'
    })
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
    sendJson(req, res, { status: 'ok', messages: stats.messages, claims: stats.claims, announcements: stats.announcements }, { cacheControl: 'no-store' })
  }

  const routes = new Map<string, Handler>([
    ['/api/v1/claims', claims],
    ['/api/v1/releases', releases],
    ['/api/v1/targets', targets],
    ['/api/v1/builders', builders],
    ['/claims.intoto.jsonl', jsonl],
    ['/feed.json', feed],
    ['/metrics', metrics],
    ['/healthz', healthz]
  ])

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
      if (path.startsWith(CONSENSUS_PREFIX) && path.length > CONSENSUS_PREFIX.length) return await consensus(req, res, url)
      throw new NotFoundError(`no route for ${path.slice(0, 200)}`)
    }
  }
}
