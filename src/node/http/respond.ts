import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { LimitError, NekoError, ValidationError } from '../../protocol/errors.js'
import { NoTrustedAnnouncementError, UnknownTagError } from '../consensus/errors.js'
import { MethodNotAllowedError, NotFoundError, UriTooLongError } from './errors.js'

/** Headers every response carries: the API is public and read-only, so any origin may read it. */
export function setCommonHeaders (res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*')
  res.setHeader('Access-Control-Expose-Headers', 'ETag, Link')
  res.setHeader('X-Content-Type-Options', 'nosniff')
}

/** A strong validator: the same bytes always give the same tag, different bytes a different one. */
function etagOf (body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url')}"`
}

/** RFC 9110 If-None-Match uses the weak comparison, so `W/"x"` matches `"x"`. */
function ifNoneMatchHits (header: string | undefined, etag: string): boolean {
  if (header == null) return false
  if (header.trim() === '*') return true
  return header.split(',').some(t => t.trim().replace(/^W\//, '') === etag)
}

export interface SendOptions {
  status?: number
  contentType?: string
  headers?: Record<string, string>
  /** Cache-Control; defaults to `no-cache` (always revalidate: the store changes any time). */
  cacheControl?: string
}

/** A response body with its validator, ready to send (and to keep in the response cache). */
export interface Prepared {
  body: Buffer
  etag: string
  contentType: string
  headers: Record<string, string>
  cacheControl?: string
}

export function prepare (body: Buffer, opts: Omit<SendOptions, 'status'> = {}): Prepared {
  const out: Prepared = { body, etag: etagOf(body), contentType: opts.contentType ?? 'application/json; charset=utf-8', headers: opts.headers ?? {} }
  if (opts.cacheControl !== undefined) out.cacheControl = opts.cacheControl
  return out
}

export function prepareJson (value: unknown, opts: Omit<SendOptions, 'status'> = {}): Prepared {
  return prepare(Buffer.from(JSON.stringify(value)), opts)
}

/** Sends a prepared 200 response, or 304 when the client already holds these bytes. */
export function sendPrepared (req: IncomingMessage, res: ServerResponse, p: Prepared): void {
  for (const [k, v] of Object.entries(p.headers)) res.setHeader(k, v)
  res.setHeader('Cache-Control', p.cacheControl ?? 'no-cache')
  res.setHeader('ETag', p.etag)
  if (ifNoneMatchHits(req.headers['if-none-match'], p.etag)) {
    res.statusCode = 304
    res.end()
    return
  }
  res.statusCode = 200
  res.setHeader('Content-Type', p.contentType)
  res.setHeader('Content-Length', p.body.length)
  res.end(req.method === 'HEAD' ? undefined : p.body)
}

/** Sends a buffered body with an ETag; answers 304 when the client already holds it. */
export function sendBody (req: IncomingMessage, res: ServerResponse, body: Buffer, opts: SendOptions = {}): void {
  const status = opts.status ?? 200
  const etag = etagOf(body)
  for (const [k, v] of Object.entries(opts.headers ?? {})) res.setHeader(k, v)
  res.setHeader('Cache-Control', opts.cacheControl ?? 'no-cache')
  if (status === 200) {
    res.setHeader('ETag', etag)
    if (ifNoneMatchHits(req.headers['if-none-match'], etag)) {
      res.statusCode = 304
      res.end()
      return
    }
  }
  res.statusCode = status
  res.setHeader('Content-Type', opts.contentType ?? 'application/json; charset=utf-8')
  res.setHeader('Content-Length', body.length)
  res.end(req.method === 'HEAD' ? undefined : body)
}

export function sendJson (req: IncomingMessage, res: ServerResponse, value: unknown, opts: SendOptions = {}): void {
  sendBody(req, res, Buffer.from(JSON.stringify(value)), opts)
}

export interface ErrorBody {
  error: { code: string, message: string, field?: string }
}

/** Maps an error to an HTTP status and a stable JSON body; unknown errors are 500 without internals. */
function errorResponse (err: unknown): { status: number, body: ErrorBody, headers: Record<string, string> } {
  const headers: Record<string, string> = {}
  if (err instanceof ValidationError || err instanceof LimitError) {
    return { status: 400, headers, body: { error: { code: err.code, message: err.message, field: err.field } } }
  }
  // No release: an unknown tag, or one no announcer of the policy announced (see `readRelease`).
  if (err instanceof UnknownTagError || err instanceof NoTrustedAnnouncementError) return { status: 404, headers, body: { error: { code: err.code, message: err.message } } }
  if (err instanceof NotFoundError) return { status: 404, headers, body: { error: { code: err.code, message: err.message } } }
  if (err instanceof MethodNotAllowedError) {
    headers.Allow = 'GET, HEAD, OPTIONS'
    return { status: 405, headers, body: { error: { code: err.code, message: err.message } } }
  }
  if (err instanceof UriTooLongError) return { status: 414, headers, body: { error: { code: err.code, message: err.message } } }
  if (err instanceof NekoError) return { status: 500, headers, body: { error: { code: err.code, message: err.message } } }
  return { status: 500, headers, body: { error: { code: 'ERR_INTERNAL', message: 'internal error' } } }
}

export function sendError (req: IncomingMessage, res: ServerResponse, err: unknown): void {
  const { status, body, headers } = errorResponse(err)
  sendJson(req, res, body, { status, headers, cacheControl: 'no-store' })
}
