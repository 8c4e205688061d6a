/**
 * C2SP tlog-cosignature, cosignature/v1 with Ed25519: a note signature by a witness over
 * `cosignature/v1\ntime <unix seconds>\n` followed by the checkpoint's whole note text.
 * Its key hash uses algorithm byte 0x04; the signature bytes are the timestamp as a
 * big-endian uint64, then the 64-byte Ed25519 signature.
 */
import { sign, type KeyObject } from 'node:crypto'
import { verifyEd25519 } from '../ed25519.js'
import { NoteError } from './errors.js'
import { ALG_COSIGNATURE_V1, isValidKeyName, keyHash, rawOf, type NoteSignature } from './note.js'

export function cosignedMessage (checkpointText: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${checkpointText}`, 'utf8')
}

export function cosignatureKeyHash (name: string, publicKey: KeyObject): number {
  return keyHash(name, ALG_COSIGNATURE_V1, rawOf(publicKey))
}

/** A cosignature line by witness `name` over a checkpoint's note text. */
export function cosignatureLine (checkpointText: string, name: string, privateKey: KeyObject, timestamp: number): string {
  if (!isValidKeyName(name)) throw new NoteError(`invalid witness name ${JSON.stringify(name.slice(0, 100))}`)
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new NoteError('a cosignature timestamp is a non-negative integer')
  const head = Buffer.alloc(12)
  head.writeUInt32BE(cosignatureKeyHash(name, privateKey), 0)
  head.writeBigUInt64BE(BigInt(timestamp), 4)
  const sig = sign(null, cosignedMessage(checkpointText, timestamp), privateKey)
  return `— ${name} ${Buffer.concat([head, sig]).toString('base64')}`
}

/** The timestamp of `sig` when it is `name`'s valid cosignature of the checkpoint text; undefined otherwise. */
export function checkCosignature (checkpointText: string, sig: NoteSignature, name: string, publicKey: KeyObject): number | undefined {
  if (sig.name !== name || sig.keyHash !== cosignatureKeyHash(name, publicKey) || sig.signature.byteLength !== 72) return undefined
  const t = sig.signature.readBigUInt64BE(0)
  if (t > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
  const timestamp = Number(t)
  return verifyEd25519(cosignedMessage(checkpointText, timestamp), sig.signature.subarray(8), publicKey) ? timestamp : undefined
}
