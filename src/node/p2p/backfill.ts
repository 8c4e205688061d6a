import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ValidationError } from '../../protocol/errors.js'
import { BACKFILL_DEFAULTS, BACKFILL_PROTOCOL } from './constants.js'
import { BackfillError } from './errors.js'
import type { BackfillFailure } from './errors.js'

/**
 * Wire format (docs/network.md): every frame is an unsigned-varint length then that many
 * bytes. The request is one frame of JSON `{"cursor":n,"limit":n}`. Each response frame
 * starts with a type byte: ITEM then one envelope, END then JSON `{"next":n}`, ERROR then
 * JSON `{"reason":"…","message":"…"}`. END or ERROR is the last frame.
 */
export const FRAME = { ITEM: 0x00, END: 0x01, ERROR: 0x02 } as const

export interface BackfillLimits {
  maxItems: number
  maxRequestBytes: number
  maxResponseBytes: number
  maxItemBytes: number
  maxConcurrentStreams: number
  maxStreamsPerPeer: number
  requestTimeoutMs: number
  timeoutMs: number
}

export type BackfillInit = Partial<BackfillLimits>

export interface BackfillRequest {
  cursor: number
  limit: number
  /** Byte budget for the items' sum; a source that fills a page by size should stop here. */
  maxBytes?: number
}

export interface BackfillPage {
  items: Uint8Array[]
  next: number
}

export type BackfillSource = (req: BackfillRequest) => Promise<BackfillPage>

const REMOTE_REASONS = new Set<BackfillFailure>([
  'too-many-items', 'item-too-large', 'response-too-large', 'request-too-large', 'bad-request', 'busy', 'timeout', 'source-failed'
])

/** Largest ERROR/END frame body either side writes; bounds what a client reads for them. */
const MAX_CONTROL_FRAME_BYTES = 1024

export function backfillLimits (init: BackfillInit = {}): BackfillLimits {
  const limits: BackfillLimits = { ...BACKFILL_DEFAULTS, ...stripUndefined(init) }
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`backfill.${field}`, `must be a positive integer, got ${String(value)}`)
    }
  }
  return limits
}

function stripUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

function isCursor (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function encodeJson (type: number, value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const frame = new Uint8Array(body.byteLength + 1)
  frame[0] = type
  frame.set(body, 1)
  return frame
}

/** Parses a request frame; throws ValidationError naming the bad field. */
export function parseRequest (bytes: Uint8Array): { cursor: number, limit: number } {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new ValidationError('request', 'is not JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('request', 'must be a JSON object')
  const { cursor, limit } = value as Record<string, unknown>
  if (!isCursor(cursor)) throw new ValidationError('request.cursor', 'must be a non-negative integer')
  if (!isCursor(limit) || limit < 1) throw new ValidationError('request.limit', 'must be a positive integer')
  return { cursor, limit }
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

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/**
 * Server side. Serves at most `maxStreamsPerPeer` streams of one peer and, across all peers,
 * `maxConcurrentStreams` exchanges past their request at once (beyond either it answers
 * ERROR busy and closes); a request must arrive within `requestTimeoutMs`. It checks what its own source returns against the same
 * limits a client enforces, and never throws into libp2p.
 */
export function createBackfillHandler (source: BackfillSource, limits: BackfillLimits, log: Logger): { handler: StreamHandler, active: () => number } {
  let active = 0
  const perPeer = new Map<string, number>()

  // Messages are cut to 256 characters so an ERROR frame stays well under the 1 KiB clients accept.
  async function refuse (stream: Stream, lp: LengthPrefixedStream<Stream>, reason: BackfillFailure, message: string, signal: AbortSignal): Promise<void> {
    log.debug({ reason, message, stream: stream.id }, 'back-fill request refused')
    await lp.write(encodeJson(FRAME.ERROR, { reason, message: message.slice(0, 256) }), { signal })
    await stream.close({ signal })
  }

  async function serve (stream: Stream, signal: AbortSignal): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: limits.maxRequestBytes })
    let raw: Uint8Array
    try {
      // A request is a few bytes: a peer that cannot send it at once is holding a slot.
      raw = (await lp.read({ signal: AbortSignal.any([signal, AbortSignal.timeout(limits.requestTimeoutMs)]) })).subarray()
    } catch (err) {
      if (errorName(err) === 'InvalidDataLengthError') {
        await refuse(stream, lp, 'request-too-large', `request exceeds ${limits.maxRequestBytes} bytes`, signal)
        return
      }
      throw err
    }
    let req: { cursor: number, limit: number }
    try {
      req = parseRequest(raw)
    } catch (err) {
      await refuse(stream, lp, 'bad-request', (err as Error).message, signal)
      return
    }
    // Only exchanges past their request count here: they read the store and hold pages.
    if (active >= limits.maxConcurrentStreams) {
      await refuse(stream, lp, 'busy', `serving ${active} back-fill streams, limit ${limits.maxConcurrentStreams}`, signal)
      return
    }
    active++
    try {
      await answer(stream, lp, req, signal)
    } finally {
      active--
    }
  }

  async function answer (stream: Stream, lp: LengthPrefixedStream<Stream>, req: { cursor: number, limit: number }, signal: AbortSignal): Promise<void> {
    const limit = Math.min(req.limit, limits.maxItems)
    let page: BackfillPage
    try {
      page = await untilAborted(source({ cursor: req.cursor, limit, maxBytes: limits.maxResponseBytes }), signal)
    } catch (err) {
      if (signal.aborted) throw err
      log.warn({ err }, 'back-fill source failed')
      await refuse(stream, lp, 'source-failed', 'the source could not read the requested range', signal)
      return
    }
    // The source is ours, but a page that breaks the limits would be refused by every
    // client anyway: say so plainly instead of sending it.
    if (!Array.isArray(page?.items) || !isCursor(page.next)) {
      await refuse(stream, lp, 'source-failed', 'the source returned a malformed page', signal)
      return
    }
    if (page.items.length > limit) {
      log.warn({ returned: page.items.length, limit }, 'back-fill source returned more items than asked')
      await refuse(stream, lp, 'too-many-items', `source returned ${page.items.length} items, limit ${limit}`, signal)
      return
    }
    let total = 0
    for (const [i, item] of page.items.entries()) {
      if (!(item instanceof Uint8Array)) {
        await refuse(stream, lp, 'source-failed', `item ${i} is not bytes`, signal)
        return
      }
      if (item.byteLength > limits.maxItemBytes) {
        await refuse(stream, lp, 'item-too-large', `item ${i} is ${item.byteLength} bytes, limit ${limits.maxItemBytes}`, signal)
        return
      }
      total += item.byteLength
    }
    if (total > limits.maxResponseBytes) {
      await refuse(stream, lp, 'response-too-large', `items total ${total} bytes, limit ${limits.maxResponseBytes}`, signal)
      return
    }
    for (const item of page.items) {
      const frame = new Uint8Array(item.byteLength + 1)
      frame[0] = FRAME.ITEM
      frame.set(item, 1)
      await lp.write(frame, { signal })
    }
    await lp.write(encodeJson(FRAME.END, { next: page.next }), { signal })
    await stream.close({ signal })
  }

  const handler: StreamHandler = async (stream, connection) => {
    const signal = AbortSignal.timeout(limits.timeoutMs)
    const peer = connection.remotePeer.toString()
    const mine = perPeer.get(peer) ?? 0
    // One peer's streams, stalled or not, never take more than its share.
    if (mine >= limits.maxStreamsPerPeer) {
      await refuse(stream, lpStream(stream), 'busy', `serving ${mine} back-fill streams to this peer, limit ${limits.maxStreamsPerPeer}`, signal)
        .catch((err: unknown) => { stream.abort(err as Error) })
      return
    }
    perPeer.set(peer, mine + 1)
    try {
      await serve(stream, signal)
    } catch (err) {
      log.debug({ err, peer: connection.remotePeer.toString() }, 'back-fill stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      const left = (perPeer.get(peer) ?? 1) - 1
      if (left > 0) perPeer.set(peer, left)
      else perPeer.delete(peer)
    }
  }
  return { handler, active: () => active }
}

function failure (reason: BackfillFailure, message: string): BackfillError {
  return new BackfillError(reason, message)
}

/**
 * Client side: asks `target` for up to `limit` items after `cursor` and checks every
 * frame against `limits` before accepting it. Items are returned unverified: the caller
 * verifies them exactly as it verifies gossip.
 */
export async function requestBackfill (libp2p: Libp2p, target: PeerId | Multiaddr, cursor: number, limit: number, limits: BackfillLimits): Promise<BackfillPage> {
  if (!isCursor(cursor)) throw new ValidationError('cursor', 'must be a non-negative integer')
  if (!isCursor(limit) || limit < 1) throw new ValidationError('limit', 'must be a positive integer')
  const want = Math.min(limit, limits.maxItems)
  const signal = AbortSignal.timeout(limits.timeoutMs)

  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(target, BACKFILL_PROTOCOL, { signal })
  } catch (err) {
    if (signal.aborted) throw failure('timeout', `no stream within ${limits.timeoutMs} ms`)
    throw failure('dial-failed', (err as Error).message)
  }

  try {
    const lp = lpStream(stream, { maxDataLength: Math.max(limits.maxItemBytes, MAX_CONTROL_FRAME_BYTES) + 1 })
    await lp.write(Buffer.from(JSON.stringify({ cursor, limit: want }), 'utf8'), { signal })
    const items: Uint8Array[] = []
    let total = 0
    for (;;) {
      let frame: Uint8Array
      try {
        frame = (await lp.read({ signal })).subarray()
      } catch (err) {
        if (signal.aborted) throw failure('timeout', `exchange exceeded ${limits.timeoutMs} ms`)
        if (errorName(err) === 'InvalidDataLengthError') throw failure('item-too-large', `a frame exceeds ${limits.maxItemBytes} bytes`)
        if (errorName(err) === 'UnexpectedEOFError') throw failure('stream-closed', 'the peer closed the stream before the final frame')
        throw failure('stream-closed', (err as Error).message)
      }
      const type = frame[0]
      const body = frame.subarray(1)
      if (type === FRAME.ITEM) {
        if (items.length >= want) throw failure('too-many-items', `peer sent more than the ${want} items asked for`)
        if (body.byteLength > limits.maxItemBytes) throw failure('item-too-large', `item ${items.length} is ${body.byteLength} bytes, limit ${limits.maxItemBytes}`)
        total += body.byteLength
        if (total > limits.maxResponseBytes) throw failure('response-too-large', `items exceed ${limits.maxResponseBytes} bytes`)
        items.push(body)
      } else if (type === FRAME.END) {
        const next = parseControl(body).next
        if (!isCursor(next)) throw failure('bad-response', 'final frame has no valid next cursor')
        await stream.close({ signal }).catch(() => {})
        return { items, next }
      } else if (type === FRAME.ERROR) {
        const { reason, message } = parseControl(body)
        const known = typeof reason === 'string' && REMOTE_REASONS.has(reason as BackfillFailure)
        throw new BackfillError(known ? reason as BackfillFailure : 'bad-response', typeof message === 'string' ? message : 'peer reported an error', true)
      } else {
        throw failure('bad-response', `unknown frame type ${String(type)}`)
      }
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

function parseControl (body: Uint8Array): Record<string, unknown> {
  if (body.byteLength > MAX_CONTROL_FRAME_BYTES) throw failure('bad-response', `control frame exceeds ${MAX_CONTROL_FRAME_BYTES} bytes`)
  try {
    const value: unknown = JSON.parse(Buffer.from(body).toString('utf8'))
    if (value != null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // reported below
  }
  throw failure('bad-response', 'control frame is not a JSON object')
}
