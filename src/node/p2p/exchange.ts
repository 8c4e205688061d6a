import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ValidationError } from '../../protocol/errors.js'
import type { ExchangeFailure } from './errors.js'
import { openStream } from './nat.js'

/**
 * The request/response stream mechanism that back-fill and file manifests share
 * (docs/network.md): one exchange per stream, every frame an unsigned-varint length then
 * that many bytes; the request is one JSON frame; each response frame starts with a type
 * byte, and an ERROR frame carries JSON `{"reason":"…","message":"…"}`. Each protocol
 * keeps its own frame types, limits, reasons and answers.
 */

/** The limits every exchange server applies, whatever it serves. */
export interface ExchangeLimits {
  maxRequestBytes: number
  maxConcurrentStreams: number
  maxStreamsPerPeer: number
  requestTimeoutMs: number
  timeoutMs: number
}

/** Largest ERROR/END frame body either side writes; bounds what a client reads for them. */
export const MAX_CONTROL_FRAME_BYTES = 1024

/** Fills `init` from `defaults` and checks every limit is a positive integer, naming it as `prefix.field`. */
export function exchangeLimits<L extends object> (prefix: string, defaults: L, init: Partial<L>): L {
  const defined = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined))
  const limits: L = { ...defaults, ...defined }
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`${prefix}.${field}`, `must be a positive integer, got ${String(value)}`)
    }
  }
  return limits
}

/** One frame: the type byte then `body`. */
export function framed (type: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(body.byteLength + 1)
  frame[0] = type
  frame.set(body, 1)
  return frame
}

/** One frame: the type byte then `value` as JSON. */
export function encodeJson (type: number, value: unknown): Uint8Array {
  return framed(type, Buffer.from(JSON.stringify(value), 'utf8'))
}

/** Parses a request frame as a JSON object; throws ValidationError naming what was wrong. */
export function parseRequestObject (bytes: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new ValidationError('request', 'is not JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('request', 'must be a JSON object')
  return value as Record<string, unknown>
}

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/** What a server's answer writes through; `refuse` sends ERROR and closes. */
export interface ExchangeReply<R extends string> {
  readonly stream: Stream
  readonly signal: AbortSignal
  write: (frame: Uint8Array) => Promise<void>
  /** Writes the last frame and closes the stream. */
  end: (frame: Uint8Array) => Promise<void>
  refuse: (reason: R | ExchangeFailure, message: string) => Promise<void>
}

export interface ExchangeServerInit<Req, R extends string> {
  /** Names the protocol in log lines and busy refusals ("back-fill", "file manifest"). */
  label: string
  errorFrame: number
  limits: ExchangeLimits
  log: Logger
  /** Parses the request; a throw is answered ERROR bad-request with its message. */
  parse: (bytes: Uint8Array) => Req
  answer: (req: Req, reply: ExchangeReply<R>) => Promise<void>
}

/**
 * Server side. Serves at most `maxStreamsPerPeer` streams of one peer and, across all peers,
 * `maxConcurrentStreams` exchanges past their request at once (beyond either it answers
 * ERROR busy and closes); a request must arrive within `requestTimeoutMs`. It never throws
 * into libp2p.
 */
export function createExchangeHandler<Req, R extends string> (init: ExchangeServerInit<Req, R>): { handler: StreamHandler, active: () => number } {
  const { label, errorFrame, limits, log, parse, answer } = init
  let active = 0
  const perPeer = new Map<string, number>()

  // Messages are cut to 256 characters so an ERROR frame stays well under the 1 KiB clients accept.
  async function refuse (stream: Stream, lp: LengthPrefixedStream<Stream>, reason: R | ExchangeFailure, message: string, signal: AbortSignal): Promise<void> {
    log.debug({ reason, message, stream: stream.id }, `${label} request refused`)
    await lp.write(encodeJson(errorFrame, { reason, message: message.slice(0, 256) }), { signal })
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
    let req: Req
    try {
      req = parse(raw)
    } catch (err) {
      await refuse(stream, lp, 'bad-request', (err as Error).message, signal)
      return
    }
    // Only exchanges past their request count here: they read the store and hold responses.
    if (active >= limits.maxConcurrentStreams) {
      await refuse(stream, lp, 'busy', `serving ${active} ${label} streams, limit ${limits.maxConcurrentStreams}`, signal)
      return
    }
    active++
    try {
      await answer(req, {
        stream,
        signal,
        write: async (frame) => { await lp.write(frame, { signal }) },
        end: async (frame) => {
          await lp.write(frame, { signal })
          await stream.close({ signal })
        },
        refuse: async (reason, message) => { await refuse(stream, lp, reason, message, signal) }
      })
    } finally {
      active--
    }
  }

  const handler: StreamHandler = async (stream, connection) => {
    const signal = AbortSignal.timeout(limits.timeoutMs)
    const peer = connection.remotePeer.toString()
    const mine = perPeer.get(peer) ?? 0
    // One peer's streams, stalled or not, never take more than its share.
    if (mine >= limits.maxStreamsPerPeer) {
      await refuse(stream, lpStream(stream), 'busy', `serving ${mine} ${label} streams to this peer, limit ${limits.maxStreamsPerPeer}`, signal)
        .catch((err: unknown) => { stream.abort(err as Error) })
      return
    }
    perPeer.set(peer, mine + 1)
    try {
      await serve(stream, signal)
    } catch (err) {
      log.debug({ err, peer }, `${label} stream failed`)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      const left = (perPeer.get(peer) ?? 1) - 1
      if (left > 0) perPeer.set(peer, left)
      else perPeer.delete(peer)
    }
  }
  return { handler, active: () => active }
}

/** Builds a protocol's own error for a reason; `remote` when the peer reported it in ERROR. */
export type ExchangeFail<R extends string> = (reason: R | ExchangeFailure, message: string, remote?: boolean) => Error

/** Parses an END or ERROR body: a JSON object of at most MAX_CONTROL_FRAME_BYTES. */
export function parseControl<R extends string> (body: Uint8Array, fail: ExchangeFail<R>): Record<string, unknown> {
  if (body.byteLength > MAX_CONTROL_FRAME_BYTES) throw fail('bad-response', `control frame exceeds ${MAX_CONTROL_FRAME_BYTES} bytes`)
  try {
    const value: unknown = JSON.parse(Buffer.from(body).toString('utf8'))
    if (value != null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
  } catch {
    // reported below
  }
  throw fail('bad-response', 'control frame is not a JSON object')
}

export interface ExchangeClientInit<R extends string> {
  protocol: string
  timeoutMs: number
  /** Largest non-control frame body the protocol accepts. */
  maxBodyBytes: number
  errorFrame: number
  /** Reasons a peer may report in ERROR; any other is taken as bad-response. */
  remoteReasons: ReadonlySet<string>
  fail: ExchangeFail<R>
  /** What a frame longer than any the protocol accepts is reported as. */
  oversize: { reason: R, message: string }
}

/**
 * Client side: dials `target`, sends `request` as JSON and hands every frame but ERROR to
 * `onFrame` until it returns a result (after the last frame), then closes. ERROR becomes the
 * protocol's error with `remote` set; any failure aborts the stream.
 */
export async function requestExchange<T, R extends string> (libp2p: Libp2p, target: PeerId | Multiaddr, request: unknown, init: ExchangeClientInit<R>, onFrame: (type: number | undefined, body: Uint8Array) => T | undefined): Promise<T> {
  const { fail, timeoutMs } = init
  const signal = AbortSignal.timeout(timeoutMs)
  let stream: Stream
  try {
    stream = await openStream(libp2p, target, init.protocol, { signal })
  } catch (err) {
    if (signal.aborted) throw fail('timeout', `no stream within ${timeoutMs} ms`)
    throw fail('dial-failed', (err as Error).message)
  }
  try {
    const lp = lpStream(stream, { maxDataLength: Math.max(init.maxBodyBytes, MAX_CONTROL_FRAME_BYTES) + 1 })
    await lp.write(Buffer.from(JSON.stringify(request), 'utf8'), { signal })
    for (;;) {
      let frame: Uint8Array
      try {
        frame = (await lp.read({ signal })).subarray()
      } catch (err) {
        if (signal.aborted) throw fail('timeout', `exchange exceeded ${timeoutMs} ms`)
        if (errorName(err) === 'InvalidDataLengthError') throw fail(init.oversize.reason, init.oversize.message)
        if (errorName(err) === 'UnexpectedEOFError') throw fail('stream-closed', 'the peer closed the stream before the final frame')
        throw fail('stream-closed', (err as Error).message)
      }
      const type = frame[0]
      const body = frame.subarray(1)
      if (type === init.errorFrame) {
        const { reason, message } = parseControl(body, fail)
        const known = typeof reason === 'string' && init.remoteReasons.has(reason)
        throw fail(known ? reason as R : 'bad-response', typeof message === 'string' ? message : 'peer reported an error', true)
      }
      const result = onFrame(type, body)
      if (result !== undefined) {
        await stream.close({ signal }).catch(() => {})
        return result
      }
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
