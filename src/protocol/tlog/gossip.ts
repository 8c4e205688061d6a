/**
 * The checkpoint gossip message: `{"note": <signed note>, "keys": [<vkey>…]}` in JSON. The
 * note is a checkpoint signed by its log and perhaps cosigned by witnesses; `keys` holds a
 * verifier key for every signature line. Names are self-certifying: a log's origin and a
 * witness's name end in the key id (SHA-256 of the SPKI) of the key that signs for it, so a
 * receiver needs no directory to check who signed. Everything in a message is checked: one
 * bad or unexplained signature rejects it.
 */
import type { KeyObject } from 'node:crypto'
import { keyIdOf } from '../keys.js'
import { LimitError, ValidationError } from '../errors.js'
import { parseCheckpoint, type Checkpoint } from './checkpoint.js'
import { checkCosignature } from './cosignature.js'
import { keyIdOfName } from './entry.js'
import { NoteError } from './errors.js'
import { ALG_COSIGNATURE_V1, ALG_ED25519, NOTE_LIMITS, openNote, parseVerifierKey } from './note.js'

export const CHECKPOINT_MESSAGE_BYTES = 32 * 1024

export interface VerifiedCosignature {
  name: string
  keyId: string
  timestamp: number
  line: string
  vkey: string
  publicKey: KeyObject
}

export interface VerifiedCheckpoint {
  note: string
  text: string
  checkpoint: Checkpoint
  logKeyId: string
  logKey: KeyObject
  logVkey: string
  logLine: string
  cosignatures: VerifiedCosignature[]
}

export function encodeCheckpointMessage (note: string, keys: readonly string[]): Buffer {
  return Buffer.from(JSON.stringify({ note, keys }), 'utf8')
}

/** Decodes and verifies a checkpoint message; throws ValidationError, LimitError or NoteError naming the fault. */
export function decodeCheckpointMessage (data: Uint8Array): VerifiedCheckpoint {
  if (data.byteLength > CHECKPOINT_MESSAGE_BYTES) throw new LimitError('checkpoint message', CHECKPOINT_MESSAGE_BYTES, data.byteLength)
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(data).toString('utf8'))
  } catch {
    throw new ValidationError('checkpoint message', 'is not JSON')
  }
  const { note, keys } = (value ?? {}) as Record<string, unknown>
  if (typeof note !== 'string') throw new ValidationError('checkpoint message.note', 'must be a string')
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > NOTE_LIMITS.signatures) throw new ValidationError('checkpoint message.keys', `must be 1 to ${NOTE_LIMITS.signatures} verifier keys`)
  const byName = new Map<string, { vkey: string, alg: number, publicKey: KeyObject, keyId: string }>()
  for (const [i, k] of keys.entries()) {
    if (typeof k !== 'string') throw new ValidationError(`checkpoint message.keys[${i}]`, 'must be a string')
    const v = parseVerifierKey(k)
    const keyId = keyIdOf(v.publicKey)
    if (keyIdOfName(v.name) !== keyId) throw new NoteError(`key ${v.name} is not named after its own key id ${keyId}`)
    byName.set(v.name, { vkey: k, alg: v.alg, publicKey: v.publicKey, keyId })
  }
  const text = note.slice(0, note.lastIndexOf('\n\n') + 1)
  const checkpoint = parseCheckpoint(text)
  const logKey = byName.get(checkpoint.origin)
  if (logKey === undefined || logKey.alg !== ALG_ED25519 || !checkpoint.origin.startsWith('neko-rebuilder/log/')) throw new NoteError(`no log key for origin ${checkpoint.origin.slice(0, 120)}`)
  const parsed = openNote(note, checkpoint.origin, logKey.publicKey)
  let logLine = ''
  const cosignatures: VerifiedCosignature[] = []
  for (const sig of parsed.signatures) {
    if (sig.name === checkpoint.origin) {
      if (logLine !== '') throw new NoteError('the log signed this checkpoint twice')
      logLine = sig.line
      continue
    }
    const k = byName.get(sig.name)
    if (k === undefined || k.alg !== ALG_COSIGNATURE_V1) throw new NoteError(`no cosignature key for ${sig.name.slice(0, 120)}`)
    const timestamp = checkCosignature(parsed.text, sig, sig.name, k.publicKey)
    if (timestamp === undefined) throw new NoteError(`the cosignature by ${sig.name.slice(0, 120)} does not verify`)
    cosignatures.push({ name: sig.name, keyId: k.keyId, timestamp, line: sig.line, vkey: k.vkey, publicKey: k.publicKey })
  }
  return { note, text: parsed.text, checkpoint, logKeyId: logKey.keyId, logKey: logKey.publicKey, logVkey: logKey.vkey, logLine, cosignatures }
}
