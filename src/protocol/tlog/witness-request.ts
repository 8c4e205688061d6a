/**
 * C2SP tlog-witness `add-checkpoint` over HTTP: the request body (`old <size>`, up to 63
 * RFC 6962 consistency proof lines, a blank line, the signed checkpoint), the 409 answer
 * (`text/x.tlog.size`: the size the witness last cosigned) and the 200 answer (cosignature
 * lines). Pure formatting and parsing, every length bounded before anything is decoded.
 */
import { HASH_SIZE } from './hash.js'
import { NekoError } from '../errors.js'
import { NOTE_LIMITS, parseNote, type NoteSignature } from './note.js'

export const ADD_CHECKPOINT_PATH = '/add-checkpoint'
export const TLOG_SIZE_CONTENT_TYPE = 'text/x.tlog.size'

export const ADD_CHECKPOINT_LIMITS = {
  /** Proof lines the spec allows a client to send. */
  maxProofLines: 63,
  /** The old size line, every proof line and the note, with room to spare. */
  maxBodyBytes: 64 + 63 * 46 + NOTE_LIMITS.noteBytes,
  /** A 200 answer: a few cosignature lines. */
  maxResponseBytes: 8 * 1024
} as const

/** The body is not an add-checkpoint request: 400. */
export class AddCheckpointError extends NekoError {
  override name = 'AddCheckpointError'
  override readonly code = 'ERR_TLOG_ADD_CHECKPOINT'
}

export interface AddCheckpointRequest {
  oldSize: number
  proof: Buffer[]
  /** The signed checkpoint, with whatever signatures the client sent. */
  note: string
}

export function formatAddCheckpoint (oldSize: number, proof: readonly Uint8Array[], note: string): Buffer {
  return Buffer.from(`old ${oldSize}\n${proof.map(h => `${Buffer.from(h).toString('base64')}\n`).join('')}\n${note}`, 'utf8')
}

/** Parses a request body; throws AddCheckpointError naming the fault. */
export function parseAddCheckpoint (body: Uint8Array): AddCheckpointRequest {
  if (body.byteLength > ADD_CHECKPOINT_LIMITS.maxBodyBytes) throw new AddCheckpointError(`the body has ${body.byteLength} bytes, more than ${ADD_CHECKPOINT_LIMITS.maxBodyBytes}`)
  const text = Buffer.from(body).toString('utf8')
  const blank = text.indexOf('\n\n')
  if (blank < 0) throw new AddCheckpointError('the body needs an old size line, proof lines and a blank line before the checkpoint')
  const head = text.slice(0, blank).split('\n')
  if (head.length > ADD_CHECKPOINT_LIMITS.maxProofLines + 1) throw new AddCheckpointError(`more than ${ADD_CHECKPOINT_LIMITS.maxProofLines} consistency proof lines`)
  const [first = '', ...lines] = head
  const m = /^old (0|[1-9][0-9]{0,15})$/.exec(first)
  if (m === null || !Number.isSafeInteger(Number(m[1]))) throw new AddCheckpointError(`the first line must be "old <size>" in decimal without leading zeros, got ${JSON.stringify(first.slice(0, 40))}`)
  const proof = lines.map((l, i) => {
    const h = Buffer.from(l, 'base64')
    if (h.byteLength !== HASH_SIZE || h.toString('base64') !== l) throw new AddCheckpointError(`proof line ${i + 1} is not base64 of a ${HASH_SIZE}-byte hash`)
    return h
  })
  return { oldSize: Number(m[1]), proof, note: text.slice(blank + 2) }
}

/** The 409 body: the size the witness last cosigned. */
export function formatTlogSize (size: number): string {
  return `${size}\n`
}

/** Reads a 409 body; undefined when it is not one decimal size and a newline. */
export function parseTlogSize (body: string): number | undefined {
  const m = /^(0|[1-9][0-9]{0,15})\n$/.exec(body)
  return m === null || !Number.isSafeInteger(Number(m[1])) ? undefined : Number(m[1])
}

/**
 * Reads a 200 body, one or more signature lines, by putting them under the checkpoint text
 * as the spec suggests; the caller checks each against the witness keys it trusts.
 */
export function parseCosignatureLines (checkpointText: string, body: string): NoteSignature[] {
  if (Buffer.byteLength(body, 'utf8') > ADD_CHECKPOINT_LIMITS.maxResponseBytes) throw new AddCheckpointError(`the answer has more than ${ADD_CHECKPOINT_LIMITS.maxResponseBytes} bytes`)
  if (body === '' || !body.endsWith('\n')) throw new AddCheckpointError('the answer must be signature lines, each ending in a newline')
  return parseNote(`${checkpointText}\n${body}`).signatures
}
