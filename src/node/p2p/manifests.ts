import type { Libp2p, PeerId, StreamHandler } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../logger.js'
import { ValidationError } from '../../protocol/errors.js'
import { WIRE } from '../../protocol/patterns.js'
import type { VerifyOptions } from '../../protocol/dsse.js'
import { entriesHasher, parseManifestEntry, verifyFileManifestHeader, type FileManifestHeader, type ManifestEntry } from '../../protocol/divergence-report.js'
import type { Digest } from '../../protocol/types.js'
import { MANIFEST_DEFAULTS, MANIFEST_PROTOCOL } from './constants.js'
import { ManifestExchangeError } from './errors.js'
import type { ManifestFailure } from './errors.js'
import { createExchangeHandler, encodeJson, exchangeLimits, framed, parseControl, parseRequestObject, requestExchange } from './exchange.js'
import type { ExchangeLimits, ExchangeReply } from './exchange.js'

/**
 * Wire format (docs/network.md), framed like back-fill: every frame is an unsigned-varint
 * length then that many bytes. The request is one frame of JSON `{"manifest":"sha256:…"}`.
 * Each response frame starts with a type byte: HEAD then one signed envelope (the header),
 * ENTRY then one entry as JSON, END then JSON `{"entries":n}`, ERROR then JSON
 * `{"reason":"…","message":"…"}`. HEAD comes first, END or ERROR last.
 */
export const MANIFEST_FRAME = { HEAD: 0x00, ENTRY: 0x01, END: 0x02, ERROR: 0x03 } as const

export interface ManifestLimits extends ExchangeLimits {
  maxEntries: number
  maxEntryBytes: number
  maxHeaderBytes: number
  maxResponseBytes: number
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


export function manifestLimits (init: ManifestExchangeInit = {}): ManifestLimits {
  return exchangeLimits('manifests', MANIFEST_DEFAULTS, init)
}

/** Parses a request frame; throws ValidationError naming the bad field. */
export function parseManifestRequest (bytes: Uint8Array): { manifest: Digest } {
  const { manifest } = parseRequestObject(bytes)
  if (typeof manifest !== 'string' || !WIRE.digest.test(manifest)) throw new ValidationError('request.manifest', 'must be a sha256 digest (sha256: and 64 lowercase hex)')
  return { manifest }
}

/**
 * Server side: the shared exchange server (per-peer and global stream slots, request
 * timeout, ERROR busy) answering from `source`; what the source returns is checked against
 * the limits a client applies.
 */
export function createManifestHandler (components: { source: ManifestSource, log: Logger }, limits: ManifestLimits): { handler: StreamHandler, active: () => number } {
  const { source, log } = components
  async function answer ({ manifest: digest }: { manifest: Digest }, reply: ExchangeReply<ManifestFailure>): Promise<void> {
    let served: ServedManifest | undefined
    try {
      served = await source(digest)
    } catch (err) {
      log.warn({ err, digest }, 'file manifest source failed')
      await reply.refuse('source-failed', 'the manifest could not be read')
      return
    }
    if (served == null) {
      await reply.refuse('not-found', `no file manifest kept for ${digest}`)
      return
    }
    if (served.header.byteLength > limits.maxHeaderBytes) {
      await reply.refuse('source-failed', `header is ${served.header.byteLength} bytes, limit ${limits.maxHeaderBytes}`)
      return
    }
    await reply.write(framed(MANIFEST_FRAME.HEAD, served.header))
    let count = 0
    let total = 0
    for (const body of served.entries) {
      // The header already promised the count: a manifest past the limits is cut off with a reason, not sent whole.
      if (++count > limits.maxEntries) { await reply.refuse('too-many-entries', `more than ${limits.maxEntries} entries`); return }
      if (body.byteLength > limits.maxEntryBytes) { await reply.refuse('entry-too-large', `entry ${count - 1} is ${body.byteLength} bytes, limit ${limits.maxEntryBytes}`); return }
      total += body.byteLength
      if (total > limits.maxResponseBytes) { await reply.refuse('response-too-large', `entries exceed ${limits.maxResponseBytes} bytes`); return }
      await reply.write(framed(MANIFEST_FRAME.ENTRY, body))
    }
    await reply.end(encodeJson(MANIFEST_FRAME.END, { entries: count }))
  }

  return createExchangeHandler({ label: 'file manifest', errorFrame: MANIFEST_FRAME.ERROR, limits, log, parse: parseManifestRequest, answer })
}

function failure (reason: ManifestFailure, message: string, remote = false): ManifestExchangeError {
  return new ManifestExchangeError(reason, message, remote)
}

/**
 * Client side: asks `target` for the file manifest of `manifestDigest`, verifies the signed
 * header (with `verify`, and that it names the digest asked for), then checks every entry
 * against the limits, the header's counts and its entries digest as it arrives.
 */
export async function requestFileManifest (libp2p: Libp2p, target: PeerId | Multiaddr, manifestDigest: Digest, verify: VerifyOptions, limits: ManifestLimits): Promise<FetchedManifest> {
  if (!WIRE.digest.test(manifestDigest)) throw new ValidationError('manifestDigest', 'must be a sha256 digest')
  let header: FileManifestHeader | undefined
  let keyId = ''
  const entries: ManifestEntry[] = []
  const hash = entriesHasher()
  let total = 0
  return await requestExchange(libp2p, target, { manifest: manifestDigest }, {
    protocol: MANIFEST_PROTOCOL,
    timeoutMs: limits.timeoutMs,
    maxBodyBytes: Math.max(limits.maxHeaderBytes, limits.maxEntryBytes),
    errorFrame: MANIFEST_FRAME.ERROR,
    remoteReasons: REMOTE_REASONS,
    fail: failure,
    oversize: { reason: 'entry-too-large', message: 'a frame exceeds the limits' }
  }, (type, body): FetchedManifest | undefined => {
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
      return undefined
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
      return undefined
    }
    if (type === MANIFEST_FRAME.END) {
      const { entries: n } = parseControl(body, failure)
      if (n !== entries.length || n !== header.entries) throw failure('bad-response', `final frame counts ${String(n)} entries; received ${entries.length}, header announced ${header.entries}`)
      if (hash.digest() !== header.entriesDigest) throw failure('bad-signature', 'the entries do not match the signed entries digest')
      return { header, keyId, entries, bytes: total }
    }
    throw failure('bad-response', `unknown frame type ${String(type)}`)
  })
}
