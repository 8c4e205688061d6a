/**
 * The transparency log over HTTP, in the C2SP tlog-tiles layout under `/tlog/`: the
 * checkpoint (mutable, revalidated), tiles and entry bundles (immutable, cached forever, so
 * any static host or CDN can mirror them), and two conveniences: an inclusion proof by
 * message id, and the split views this node has proven.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import { parseTilePath, type TileRef } from '../../protocol/tlog/tiles.js'
import type { TransparencyLog } from '../tlog/types.js'
import type { NetworkLog } from '../tlog/network-log.js'
import { NotFoundError } from './errors.js'
import { Query } from './query.js'
import { sendBody, sendJson } from './respond.js'

export const TLOG_PREFIX = '/tlog/'
const IMMUTABLE = 'public, max-age=31536000, immutable'
const ID_PATTERN = /^[0-9a-f]{64}$/

/**
 * Whether an Accept-Encoding header admits gzip (RFC 9110 §12.5.3): named, or by `*`, with a
 * non-zero weight. C2SP tlog-tiles asks logs to compress entry bundles at the HTTP layer.
 */
export function acceptsGzip (header: string | undefined): boolean {
  if (header === undefined) return false
  let star = false
  for (const part of header.split(',').slice(0, 32)) {
    const [token = '', ...params] = part.trim().toLowerCase().split(';')
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2))
    const ok = Number.isFinite(weight) && weight > 0
    if (token === 'gzip' || token === 'x-gzip') return ok
    if (token === '*') star = ok
  }
  return star
}

export interface TlogRouteContext {
  log: TransparencyLog
  /** Split-view proofs this node holds (JSON-ready). */
  splitViews?: () => Promise<unknown[]>
  /** Logs this node, as a witness, finds not answering proof requests (JSON-ready). */
  unresponsive?: () => unknown[]
  /** Logs whose newest checkpoint this node, as a witness, has not cosigned yet, and why (JSON-ready). */
  behind?: () => unknown[]
  /** This node's own log, when its newest checkpoint lacks its sampled or policy witnesses' cosignatures (JSON-ready). */
  underWitnessed?: () => unknown[]
}

/** Without a log, only `/tlog/split-views`, `/tlog/unresponsive`, `/tlog/behind` and `/tlog/under-witnessed` answer (empty), so the dashboard and status can always ask. */
export function createTlogRoutes (ctx: TlogRouteContext | undefined): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    const path = url.pathname.slice(TLOG_PREFIX.length)
    if (path === 'split-views') {
      new Query(url.searchParams, [])
      const log = ctx === undefined ? null : { origin: ctx.log.origin, size: ctx.log.checkpointSize() }
      sendJson(req, res, { log, items: await ctx?.splitViews?.() ?? [] }, { cacheControl: 'no-cache' })
      return
    }
    if (path === 'unresponsive' || path === 'behind' || path === 'under-witnessed') {
      new Query(url.searchParams, [])
      const items = path === 'behind' ? ctx?.behind?.() : path === 'under-witnessed' ? ctx?.underWitnessed?.() : ctx?.unresponsive?.()
      sendJson(req, res, { items: items ?? [] }, { cacheControl: 'no-cache' })
      return
    }
    if (ctx === undefined) throw new NotFoundError('this node keeps no transparency log')
    if (path === 'checkpoint') {
      new Query(url.searchParams, [])
      const note = ctx.log.checkpoint()
      if (note === undefined) throw new NotFoundError('the log has no checkpoint yet')
      // Mutable: a cache may keep it no longer than a moment.
      sendBody(req, res, Buffer.from(note, 'utf8'), { contentType: 'text/plain; charset=utf-8', cacheControl: 'no-cache' })
      return
    }
    if (path === 'checkpoints') {
      new Query(url.searchParams, [])
      // The kept recent checkpoints with every cosignature collected, newest first.
      sendJson(req, res, { items: ctx.log.checkpoints() }, { cacheControl: 'no-cache' })
      return
    }
    if (path === 'inclusion') {
      const q = new Query(url.searchParams, ['id'])
      const id = q.string('id', ID_PATTERN, 'an envelope id (64 lowercase hex)')
      if (id === undefined) throw new NotFoundError('name a message: ?id=<envelope id>')
      const answer = await ctx.log.inclusion(id)
      if (answer === undefined) throw new NotFoundError(`message ${id} is not in the latest checkpoint of this log`)
      sendJson(req, res, answer, { cacheControl: 'no-cache' })
      return
    }
    await sendTile(req, res, url, path, ctx.log.tile)
  }
}

/** Serves the hash tile or entry bundle `path` names (relative to its log's prefix), immutable. */
export async function sendTile (req: IncomingMessage, res: ServerResponse, url: URL, path: string, tile: (ref: TileRef) => Promise<Buffer | undefined>): Promise<void> {
  const ref = parseTilePath(path)
  if (ref === undefined) throw new NotFoundError(`no route for ${url.pathname.slice(0, 200)}`)
  new Query(url.searchParams, [])
  const body = await tile(ref)
  if (body === undefined) throw new NotFoundError(`the log is not yet wide enough for ${path}`)
  if (ref.level === 'entries') {
    // Each encoding is its own representation, with its own ETag; caches key on Accept-Encoding.
    const gzip = acceptsGzip(req.headers['accept-encoding'])
    const headers: Record<string, string> = { Vary: 'Accept-Encoding', ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) }
    sendBody(req, res, gzip ? gzipSync(body) : body, { contentType: 'application/octet-stream', cacheControl: IMMUTABLE, headers })
    return
  }
  sendBody(req, res, body, { contentType: 'application/octet-stream', cacheControl: IMMUTABLE })
}

export const NETWORK_LOG_PREFIX = '/network-log/'

/** The network log (`join --network-log`) in the tlog-tiles layout: `checkpoint` and tiles. */
export function createNetworkLogRoutes (log: Pick<NetworkLog, 'checkpoint' | 'tile'>): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    const path = url.pathname.slice(NETWORK_LOG_PREFIX.length)
    if (path === 'checkpoint') {
      new Query(url.searchParams, [])
      const note = log.checkpoint()
      if (note === undefined) throw new NotFoundError('the network log has no checkpoint yet')
      sendBody(req, res, Buffer.from(note, 'utf8'), { contentType: 'text/plain; charset=utf-8', cacheControl: 'no-cache' })
      return
    }
    await sendTile(req, res, url, path, log.tile)
  }
}
