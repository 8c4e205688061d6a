import type { Libp2p, PeerId, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ValidationError } from '../../protocol/errors.js'
import { BACKFILL_DEFAULTS, BACKFILL_PROTOCOL } from './constants.js'
import { BackfillError } from './errors.js'
import type { BackfillFailure } from './errors.js'
import { createExchangeHandler, encodeJson, exchangeLimits, framed, parseControl, parseRequestObject, requestExchange } from './exchange.js'
import type { ExchangeLimits, ExchangeReply } from './exchange.js'

/**
 * Wire format (docs/network.md): every frame is an unsigned-varint length then that many
 * bytes. The request is one frame of JSON `{"cursor":n,"limit":n}`, optionally with
 * `"before":n` (only items below it), `"newest":true` (the newest items of the range
 * rather than the oldest) and `"kind":"announcement"` (announcements only, oldest first). Each response frame starts with a type byte: ITEM then one
 * envelope, END then JSON `{"next":n,"from":n,"head":n}` (`from` and `head` optional), ERROR
 * then JSON `{"reason":"…","message":"…"}`. END or ERROR is the last frame.
 */
export const FRAME = { ITEM: 0x00, END: 0x01, ERROR: 0x02 } as const

export interface BackfillLimits extends ExchangeLimits {
  maxItems: number
  maxResponseBytes: number
  maxItemBytes: number
}

export type BackfillInit = Partial<BackfillLimits>

export interface BackfillRequest {
  cursor: number
  limit: number
  /** Only items whose cursor is below this. */
  before?: number
  /**
   * The newest items of the range instead of the oldest (a new node asks for recent
   * releases first); the page then says where it starts (`from`).
   */
  newest?: boolean
  /**
   * Only announcements after `cursor`: a new node reads them before any history, since no
   * claim can be judged without its release's announcement.
   */
  kind?: 'announcement'
  /** Byte budget for the items' sum; a source that fills a page by size should stop here. */
  maxBytes?: number
}

/** What one request may add to `{ cursor, limit }`. */
export type BackfillRange = Pick<BackfillRequest, 'before' | 'newest' | 'kind'>

export interface BackfillPage {
  items: Uint8Array[]
  /** The page covers every item with a cursor in (from, next]; `from` is the request's cursor when absent. */
  next: number
  from?: number
  /** The server's newest cursor: how far behind the client is. */
  head?: number
}

export type BackfillSource = (req: BackfillRequest) => Promise<BackfillPage>

const REMOTE_REASONS = new Set<BackfillFailure>([
  'too-many-items', 'item-too-large', 'response-too-large', 'request-too-large', 'bad-request', 'busy', 'timeout', 'source-failed'
])

export function backfillLimits (init: BackfillInit = {}): BackfillLimits {
  return exchangeLimits('backfill', BACKFILL_DEFAULTS, init)
}

function isCursor (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

/** Parses a request frame; throws ValidationError naming the bad field. */
export function parseRequest (bytes: Uint8Array): { cursor: number, limit: number } & BackfillRange {
  const { cursor, limit, before, newest, kind } = parseRequestObject(bytes)
  if (!isCursor(cursor)) throw new ValidationError('request.cursor', 'must be a non-negative integer')
  if (!isCursor(limit) || limit < 1) throw new ValidationError('request.limit', 'must be a positive integer')
  if (before !== undefined && (!isCursor(before) || before <= cursor)) throw new ValidationError('request.before', 'must be an integer greater than cursor')
  if (newest !== undefined && typeof newest !== 'boolean') throw new ValidationError('request.newest', 'must be a boolean')
  if (kind !== undefined && kind !== 'announcement') throw new ValidationError('request.kind', 'must be "announcement" when given')
  if (kind !== undefined && (before !== undefined || newest !== undefined)) throw new ValidationError('request.kind', 'goes with neither before nor newest')
  return { cursor, limit, ...(before !== undefined ? { before } : {}), ...(newest === true ? { newest } : {}), ...(kind !== undefined ? { kind } : {}) }
}

/** Settles with `p`, or rejects when `signal` aborts first: a stuck source must not hold a stream slot. */
async function untilAborted<T> (p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason as Error) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Server side: the shared exchange server (per-peer and global stream slots, request
 * timeout, ERROR busy) answering from `source`. It checks what its own source returns
 * against the same limits a client enforces.
 */
export function createBackfillHandler (components: { source: BackfillSource, log: Logger }, limits: BackfillLimits): { handler: StreamHandler, active: () => number } {
  const { source, log } = components
  async function answer (req: { cursor: number, limit: number } & BackfillRange, reply: ExchangeReply<BackfillFailure>): Promise<void> {
    const { signal } = reply
    const limit = Math.min(req.limit, limits.maxItems)
    let page: BackfillPage
    try {
      page = await untilAborted(source({ ...req, limit, maxBytes: limits.maxResponseBytes }), signal)
    } catch (err) {
      if (signal.aborted) throw err
      log.warn({ err }, 'back-fill source failed')
      await reply.refuse('source-failed', 'the source could not read the requested range')
      return
    }
    // The source is ours, but a page that breaks the limits would be refused by every
    // client anyway: say so plainly instead of sending it.
    if (!Array.isArray(page?.items) || !isCursor(page.next) || !rangeFits(page, req.cursor)) {
      await reply.refuse('source-failed', 'the source returned a malformed page')
      return
    }
    if (page.items.length > limit) {
      log.warn({ returned: page.items.length, limit }, 'back-fill source returned more items than asked')
      await reply.refuse('too-many-items', `source returned ${page.items.length} items, limit ${limit}`)
      return
    }
    let total = 0
    for (const [i, item] of page.items.entries()) {
      if (!(item instanceof Uint8Array)) {
        await reply.refuse('source-failed', `item ${i} is not bytes`)
        return
      }
      if (item.byteLength > limits.maxItemBytes) {
        await reply.refuse('item-too-large', `item ${i} is ${item.byteLength} bytes, limit ${limits.maxItemBytes}`)
        return
      }
      total += item.byteLength
    }
    if (total > limits.maxResponseBytes) {
      await reply.refuse('response-too-large', `items total ${total} bytes, limit ${limits.maxResponseBytes}`)
      return
    }
    for (const item of page.items) await reply.write(framed(FRAME.ITEM, item))
    await reply.end(encodeJson(FRAME.END, { next: page.next, ...(page.from !== undefined ? { from: page.from } : {}), ...(page.head !== undefined ? { head: page.head } : {}) }))
  }

  return createExchangeHandler({ label: 'back-fill', errorFrame: FRAME.ERROR, limits, log, parse: parseRequest, answer })
}

/** `from` and `head`, when given, are cursors with cursor <= from <= next <= head. */
function rangeFits (page: { next: number, from?: unknown, head?: unknown }, cursor: number): boolean {
  if (page.from !== undefined && (!isCursor(page.from) || page.from < cursor || page.from > page.next)) return false
  if (page.head !== undefined && (!isCursor(page.head) || page.head < page.next)) return false
  return true
}

function failure (reason: BackfillFailure, message: string, remote = false): BackfillError {
  return new BackfillError(reason, message, remote)
}

/**
 * Client side: asks `target` for up to `limit` items after `cursor` and checks every
 * frame against `limits` before accepting it. Items are returned unverified: the caller
 * verifies them exactly as it verifies gossip.
 */
export async function requestBackfill (libp2p: Libp2p, target: PeerId | Multiaddr, cursor: number, limit: number, limits: BackfillLimits, range: BackfillRange = {}): Promise<BackfillPage> {
  if (!isCursor(cursor)) throw new ValidationError('cursor', 'must be a non-negative integer')
  if (!isCursor(limit) || limit < 1) throw new ValidationError('limit', 'must be a positive integer')
  if (range.before !== undefined && (!isCursor(range.before) || range.before <= cursor)) throw new ValidationError('before', 'must be an integer greater than cursor')
  const want = Math.min(limit, limits.maxItems)
  const items: Uint8Array[] = []
  let total = 0
  const request = { cursor, limit: want, ...(range.before !== undefined ? { before: range.before } : {}), ...(range.newest === true ? { newest: true } : {}), ...(range.kind !== undefined ? { kind: range.kind } : {}) }
  return await requestExchange(libp2p, target, request, {
    protocol: BACKFILL_PROTOCOL,
    timeoutMs: limits.timeoutMs,
    maxBodyBytes: limits.maxItemBytes,
    errorFrame: FRAME.ERROR,
    remoteReasons: REMOTE_REASONS,
    fail: failure,
    oversize: { reason: 'item-too-large', message: `a frame exceeds ${limits.maxItemBytes} bytes` }
  }, (type, body): BackfillPage | undefined => {
    if (type === FRAME.ITEM) {
      if (items.length >= want) throw failure('too-many-items', `peer sent more than the ${want} items asked for`)
      if (body.byteLength > limits.maxItemBytes) throw failure('item-too-large', `item ${items.length} is ${body.byteLength} bytes, limit ${limits.maxItemBytes}`)
      total += body.byteLength
      if (total > limits.maxResponseBytes) throw failure('response-too-large', `items exceed ${limits.maxResponseBytes} bytes`)
      items.push(body)
      return undefined
    }
    if (type === FRAME.END) {
      const { next, from, head } = parseControl(body, failure)
      if (!isCursor(next)) throw failure('bad-response', 'final frame has no valid next cursor')
      // A server that ignores `newest` (an older one) answers oldest first from the cursor,
      // without `from`: the page then covers (cursor, next], which is what it means.
      if (!rangeFits({ next, from, head }, cursor)) throw failure('bad-response', 'final frame has a from or head outside cursor <= from <= next <= head')
      return { items, next, ...(isCursor(from) ? { from } : {}), ...(isCursor(head) ? { head } : {}) }
    }
    throw failure('bad-response', `unknown frame type ${String(type)}`)
  })
}
