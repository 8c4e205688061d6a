/**
 * The transparency log over HTTP, in the C2SP tlog-tiles layout under `/tlog/`: the
 * checkpoint (mutable, revalidated), tiles and entry bundles (immutable, cached forever, so
 * any static host or CDN can mirror them), and two conveniences: an inclusion proof by
 * message id, and the split views this node has proven.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseTilePath } from '../../protocol/tlog/tiles.js'
import type { TransparencyLog } from '../tlog/types.js'
import { NotFoundError } from './errors.js'
import { Query } from './query.js'
import { sendBody, sendJson } from './respond.js'

export const TLOG_PREFIX = '/tlog/'
const IMMUTABLE = 'public, max-age=31536000, immutable'
const ID_PATTERN = /^[0-9a-f]{64}$/

export interface TlogRouteContext {
  log: TransparencyLog
  /** Split-view proofs this node holds (JSON-ready). */
  splitViews?: () => Promise<unknown[]>
}

/** Without a log, only `/tlog/split-views` answers (empty), so the dashboard can always ask. */
export function createTlogRoutes (ctx: TlogRouteContext | undefined): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> {
  return async (req, res, url) => {
    const path = url.pathname.slice(TLOG_PREFIX.length)
    if (path === 'split-views') {
      new Query(url.searchParams, [])
      const log = ctx === undefined ? null : { origin: ctx.log.origin, size: ctx.log.checkpointSize() }
      sendJson(req, res, { log, items: await ctx?.splitViews?.() ?? [] }, { cacheControl: 'no-cache' })
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
    if (path === 'inclusion') {
      const q = new Query(url.searchParams, ['id'])
      const id = q.string('id', ID_PATTERN, 'an envelope id (64 lowercase hex)')
      if (id === undefined) throw new NotFoundError('name a message: ?id=<envelope id>')
      const answer = await ctx.log.inclusion(id)
      if (answer === undefined) throw new NotFoundError(`message ${id} is not in the latest checkpoint of this log`)
      sendJson(req, res, answer, { cacheControl: 'no-cache' })
      return
    }
    const ref = parseTilePath(path)
    if (ref === undefined) throw new NotFoundError(`no route for ${url.pathname.slice(0, 200)}`)
    new Query(url.searchParams, [])
    const body = await ctx.log.tile(ref)
    if (body === undefined) throw new NotFoundError(`the log is not yet wide enough for ${path}`)
    sendBody(req, res, body, { contentType: 'application/octet-stream', cacheControl: IMMUTABLE })
  }
}
