import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Libp2p, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ValidationError } from '../../protocol/errors.js'
import type { VerifyOptions } from '../../protocol/dsse.js'
import { entriesHasher, parseManifestEntry, verifyFileManifestHeader, type FileManifestHeader, type ManifestEntry } from '../../protocol/triage.js'
import type { Digest } from '../../protocol/types.js'
import { MANIFEST_DEFAULTS, MANIFEST_PROTOCOL } from './constants.js'
import { ManifestExchangeError } from './errors.js'
import type { ManifestFailure } from './errors.js'

/**
 * Wire format (docs/network.md), framed like back-fill: every frame is an unsigned-varint
 * length then that many bytes. The request is one frame of JSON `{"manifest":"sha256:…"}`.
 * Each response frame starts with a type byte: HEAD then one signed envelope (the header),
 * ENTRY then one entry as JSON, END then JSON `{"entries":n}`, ERROR then JSON
 * `{"reason":"…","message":"…"}`. HEAD comes first, END or ERROR last.
 */
export const MANIFEST_FRAME = { HEAD: 0x00, ENTRY: 0x01, END: 0x02, ERROR: 0x03 } as const

export interface ManifestLimits {
  maxEntries: number
  maxRequestBytes: number
  maxEntryBytes: number
  maxHeaderBytes: number
  maxResponseBytes: number
  maxConcurrentStreams: number
  maxStreamsPerPeer: number
  requestTimeoutMs: number
  timeoutMs: number
}

export type ManifestExchangeInit = Partial<ManifestLimits>

/** What a server sends for one digest: the signed header (envelope JSON) and the entry bodies in order. */
export interface ServedManifest {
  header: Uint8Array
  entries: Iterable<Uint8Array>
}

/** Answers a digest with the manifest of a claimed image, or undefined when none is kept. */
export type ManifestSource = (manifestDigest: Digest) => Promise<ServedManifest | undefined>

/** A verified manifest as a client received it. */
export interface FetchedManifest {
  header: FileManifestHeader
  /** Key id that signed the header. */
  keyId: string
  entries: ManifestEntry[]
  /** Bytes of entries received. */
  bytes: number
}

const REMOTE_REASONS = new Set<ManifestFailure>([
  'not-found', 'too-many-entries', 'entry-too-large', 'response-too-large', 'request-too-large', 'bad-request', 'busy', 'timeout', 'source-failed'
])

const MAX_CONTROL_FRAME_BYTES = 1024
const DIGEST = /^sha256:[0-9a-f]{64}$/

export function manifestLimits (init: ManifestExchangeInit = {}): ManifestLimits {
  const defined = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined))
  const limits: ManifestLimits = { ...MANIFEST_DEFAULTS, ...defined }
  for (const [field, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new ValidationError(`manifests.${field}`, `must be a positive integer, got ${String(value)}`)
    }
  }
  return limits
}

function encodeJson (type: number, value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), 'utf8')
  const frame = new Uint8Array(body.byteLength + 1)
  frame[0] = type
  frame.set(body, 1)
  return frame
}

function framed (type: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(body.byteLength + 1)
  frame[0] = type
  frame.set(body, 1)
  return frame
}

/** Parses a request frame; throws ValidationError naming the bad field. */
export function parseManifestRequest (bytes: Uint8Array): { manifest: Digest } {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    throw new ValidationError('request', 'is not JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError('request', 'must be a JSON object')
  const { manifest } = value as Record<string, unknown>
  if (typeof manifest !== 'string' || !DIGEST.test(manifest)) throw new ValidationError('request.manifest', 'must be a sha256 digest (sha256: and 64 lowercase hex)')
  return { manifest }
}

function errorName (err: unknown): string {
  return err instanceof Error ? err.name : ''
}

/**
 * Server side. At most `maxStreamsPerPeer` streams of one peer and `maxConcurrentStreams`
 * answered at once (beyond either: ERROR busy); the request must arrive within
 * `requestTimeoutMs`; what the source returns is checked against the limits a client applies.
 */
export function createManifestHandler (source: ManifestSource, limits: ManifestLimits, log: Logger): { handler: StreamHandler, active: () => number } {
  let active = 0
  const perPeer = new Map<string, number>()

  async function refuse (stream: Stream, lp: LengthPrefixedStream<Stream>, reason: ManifestFailure, message: string, signal: AbortSignal): Promise<void> {
    log.debug({ reason, message, stream: stream.id }, 'file manifest request refused')
    await lp.write(encodeJson(MANIFEST_FRAME.ERROR, { reason, message: message.slice(0, 256) }), { signal })
    await stream.close({ signal })
  }

  async function serve (stream: Stream, signal: AbortSignal): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: limits.maxRequestBytes })
    let raw: Uint8Array
    try {
      raw = (await lp.read({ signal: AbortSignal.any([signal, AbortSignal.timeout(limits.requestTimeoutMs)]) })).subarray()
    } catch (err) {
      if (errorName(err) === 'InvalidDataLengthError') {
        await refuse(stream, lp, 'request-too-large', `request exceeds ${limits.maxRequestBytes} bytes`, signal)
        return
      }
      throw err
    }
    let req: { manifest: Digest }
    try {
      req = parseManifestRequest(raw)
    } catch (err) {
      await refuse(stream, lp, 'bad-request', (err as Error).message, signal)
      return
    }
    if (active >= limits.maxConcurrentStreams) {
      await refuse(stream, lp, 'busy', `serving ${active} file manifest streams, limit ${limits.maxConcurrentStreams}`, signal)
      return
    }
    active++
    try {
      await answer(stream, lp, req.manifest, signal)
    } finally {
      active--
    }
  }

  async function answer (stream: Stream, lp: LengthPrefixedStream<Stream>, digest: Digest, signal: AbortSignal): Promise<void> {
    let served: ServedManifest | undefined
    try {
      served = await source(digest)
    } catch (err) {
      log.warn({ err, digest }, 'file manifest source failed')
      await refuse(stream, lp, 'source-failed', 'the manifest could not be read', signal)
      return
    }
    if (served == null) {
      await refuse(stream, lp, 'not-found', `no file manifest kept for ${digest}`, signal)
      return
    }
    if (served.header.byteLength > limits.maxHeaderBytes) {
      await refuse(stream, lp, 'source-failed', `header is ${served.header.byteLength} bytes, limit ${limits.maxHeaderBytes}`, signal)
      return
    }
    await lp.write(framed(MANIFEST_FRAME.HEAD, served.header), { signal })
    let count = 0
    let total = 0
    for (const body of served.entries) {
      // The header already promised the count: a manifest past the limits is cut off with a reason, not sent whole.
      if (++count > limits.maxEntries) { await refuse(stream, lp, 'too-many-entries', `more than ${limits.maxEntries} entries`, signal); return }
      if (body.byteLength > limits.maxEntryBytes) { await refuse(stream, lp, 'entry-too-large', `entry ${count - 1} is ${body.byteLength} bytes, limit ${limits.maxEntryBytes}`, signal); return }
      total += body.byteLength
      if (total > limits.maxResponseBytes) { await refuse(stream, lp, 'response-too-large', `entries exceed ${limits.maxResponseBytes} bytes`, signal); return }
      await lp.write(framed(MANIFEST_FRAME.ENTRY, body), { signal })
    }
    await lp.write(encodeJson(MANIFEST_FRAME.END, { entries: count }), { signal })
    await stream.close({ signal })
  }

  const handler: StreamHandler = async (stream, connection) => {
    const signal = AbortSignal.timeout(limits.timeoutMs)
    const peer = connection.remotePeer.toString()
    const mine = perPeer.get(peer) ?? 0
    if (mine >= limits.maxStreamsPerPeer) {
      await refuse(stream, lpStream(stream), 'busy', `serving ${mine} file manifest streams to this peer, limit ${limits.maxStreamsPerPeer}`, signal)
        .catch((err: unknown) => { stream.abort(err as Error) })
      return
    }
    perPeer.set(peer, mine + 1)
    try {
      await serve(stream, signal)
    } catch (err) {
      log.debug({ err, peer }, 'file manifest stream failed')
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      const left = (perPeer.get(peer) ?? 1) - 1
      if (left > 0) perPeer.set(peer, left)
      else perPeer.delete(peer)
    }
  }
  return { handler, active: () => active }
}

function failure (reason: ManifestFailure, message: string): ManifestExchangeError {
  return new ManifestExchangeError(reason, message)
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

/**
 * Client side: asks `target` for the file manifest of `manifestDigest`, verifies the signed
 * header (with `verify`, and that it names the digest asked for), then checks every entry
 * against the limits, the header's counts and its entries digest as it arrives.
 */
export async function requestFileManifest (libp2p: Libp2p, target: PeerId | Multiaddr, manifestDigest: Digest, verify: VerifyOptions, limits: ManifestLimits): Promise<FetchedManifest> {
  if (!DIGEST.test(manifestDigest)) throw new ValidationError('manifestDigest', 'must be a sha256 digest')
  const signal = AbortSignal.timeout(limits.timeoutMs)
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(target, MANIFEST_PROTOCOL, { signal })
  } catch (err) {
    if (signal.aborted) throw failure('timeout', `no stream within ${limits.timeoutMs} ms`)
    throw failure('dial-failed', (err as Error).message)
  }
  try {
    const lp = lpStream(stream, { maxDataLength: Math.max(limits.maxHeaderBytes, limits.maxEntryBytes, MAX_CONTROL_FRAME_BYTES) + 1 })
    await lp.write(Buffer.from(JSON.stringify({ manifest: manifestDigest }), 'utf8'), { signal })
    let header: FileManifestHeader | undefined
    let keyId = ''
    const entries: ManifestEntry[] = []
    const hash = entriesHasher()
    let total = 0
    for (;;) {
      let frame: Uint8Array
      try {
        frame = (await lp.read({ signal })).subarray()
      } catch (err) {
        if (signal.aborted) throw failure('timeout', `exchange exceeded ${limits.timeoutMs} ms`)
        if (errorName(err) === 'InvalidDataLengthError') throw failure('entry-too-large', 'a frame exceeds the limits')
        if (errorName(err) === 'UnexpectedEOFError') throw failure('stream-closed', 'the peer closed the stream before the final frame')
        throw failure('stream-closed', (err as Error).message)
      }
      const type = frame[0]
      const body = frame.subarray(1)
      if (type === MANIFEST_FRAME.ERROR) {
        const { reason, message } = parseControl(body)
        const known = typeof reason === 'string' && REMOTE_REASONS.has(reason as ManifestFailure)
        throw new ManifestExchangeError(known ? reason as ManifestFailure : 'bad-response', typeof message === 'string' ? message : 'peer reported an error', true)
      }
      if (header == null) {
        if (type !== MANIFEST_FRAME.HEAD) throw failure('bad-response', 'the first frame is not the header')
        if (body.byteLength > limits.maxHeaderBytes) throw failure('bad-response', `header exceeds ${limits.maxHeaderBytes} bytes`)
        try {
          const v = verifyFileManifestHeader(Buffer.from(body).toString('utf8'), { ...verify, maxBytes: limits.maxHeaderBytes })
          header = v.header
          keyId = v.keyId
        } catch (err) {
          throw failure('bad-signature', (err as Error).message)
        }
        if (header.manifestDigest !== manifestDigest) throw failure('bad-response', `header names ${header.manifestDigest}, asked for ${manifestDigest}`)
        if (header.entries > limits.maxEntries) throw failure('too-many-entries', `header announces ${header.entries} entries, limit ${limits.maxEntries}`)
        continue
      }
      if (type === MANIFEST_FRAME.ENTRY) {
        if (entries.length >= header.entries) throw failure('too-many-entries', `peer sent more than the ${header.entries} entries its header announced`)
        if (body.byteLength > limits.maxEntryBytes) throw failure('entry-too-large', `entry ${entries.length} is ${body.byteLength} bytes, limit ${limits.maxEntryBytes}`)
        total += body.byteLength
        if (total > limits.maxResponseBytes) throw failure('response-too-large', `entries exceed ${limits.maxResponseBytes} bytes`)
        try {
          entries.push(parseManifestEntry(body, header.layers.length))
        } catch (err) {
          throw failure('bad-response', `entry ${entries.length}: ${(err as Error).message}`)
        }
        hash.add(body)
      } else if (type === MANIFEST_FRAME.END) {
        const { entries: n } = parseControl(body)
        if (n !== entries.length || n !== header.entries) throw failure('bad-response', `final frame counts ${String(n)} entries; received ${entries.length}, header announced ${header.entries}`)
        if (hash.digest() !== header.entriesDigest) throw failure('bad-signature', 'the entries do not match the signed entries digest')
        await stream.close({ signal }).catch(() => {})
        return { header, keyId, entries, bytes: total }
      } else {
        throw failure('bad-response', `unknown frame type ${String(type)}`)
      }
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
