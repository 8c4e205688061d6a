/**
 * C2SP signed-note: a UTF-8 text ending in a newline, a blank line, then one line per
 * signature, `— <key name> base64(key hash (4 bytes) || signature)`. Ed25519 note keys use
 * algorithm byte 0x01; the key hash is the first 4 bytes of SHA-256(name || 0x0A || alg || key).
 */
import { createHash, createPublicKey, sign, type KeyObject } from 'node:crypto'
import { rawPublicKey, verifyEd25519 } from '../ed25519.js'
import { LimitError } from '../errors.js'
import { NoteError } from './errors.js'

export const ALG_ED25519 = 0x01
export const ALG_COSIGNATURE_V1 = 0x04

export const NOTE_LIMITS = {
  /** A whole note: a checkpoint with a hundred cosignatures is under 12 KiB. */
  noteBytes: 16 * 1024,
  /** Signature lines in one note (Go's note package refuses more than 100 too). */
  signatures: 100,
  /** A key name. */
  nameLength: 256
} as const

const SIG_PREFIX = '— '

export interface NoteSignature {
  name: string
  /** The 4-byte key hash, as a number. */
  keyHash: number
  /** The signature bytes after the key hash. */
  signature: Buffer
  /** The line as written, without its newline. */
  line: string
}

export interface ParsedNote {
  /** The signed text, ending in a newline. */
  text: string
  signatures: NoteSignature[]
}

/** A key name: non-empty, no whitespace, no `+` (which separates the parts of a verifier key). */
export function isValidKeyName (name: string): boolean {
  return name.length > 0 && name.length <= NOTE_LIMITS.nameLength && !/[\s+]/u.test(name)
}

/** First 4 bytes of SHA-256(name || 0x0A || alg || key), big-endian. */
export function keyHash (name: string, alg: number, key: Uint8Array): number {
  return createHash('sha256').update(name, 'utf8').update(Buffer.from([0x0a, alg])).update(key).digest().readUInt32BE(0)
}

/** An Ed25519 public key from its 32 raw bytes. */
export function ed25519FromRaw (raw: Uint8Array): KeyObject {
  if (raw.byteLength !== 32) throw new NoteError(`an Ed25519 public key has 32 bytes, got ${raw.byteLength}`)
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' })
}

/** The 32 raw bytes of an Ed25519 key (a private key gives its public half), as key hashes take them. */
export function rawOf (key: KeyObject): Buffer {
  const raw = rawPublicKey(key.type === 'private' ? createPublicKey(key) : key)
  if (raw === undefined) throw new NoteError('not an Ed25519 key')
  return raw
}

/** A verifier key (vkey): `<name>+<key hash, 8 hex>+<base64(0x01 || key)>`, as Go's note.NewVerifier reads it. */
export function formatVerifierKey (name: string, publicKey: KeyObject, alg = ALG_ED25519): string {
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name ${JSON.stringify(name.slice(0, 100))}`)
  const raw = rawOf(publicKey)
  const hash = keyHash(name, alg, raw).toString(16).padStart(8, '0')
  return `${name}+${hash}+${Buffer.concat([Buffer.from([alg]), raw]).toString('base64')}`
}

export interface VerifierKey {
  name: string
  alg: number
  keyHash: number
  publicKey: KeyObject
}

/** Parses a vkey of an Ed25519 (0x01) or cosignature/v1 (0x04) key; checks its key hash. */
export function parseVerifierKey (vkey: string): VerifierKey {
  if (vkey.length > 1024) throw new LimitError('verifier key', 1024, vkey.length)
  // The base64 key may itself hold '+': split on the first two only.
  const first = vkey.indexOf('+')
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1)
  const name = vkey.slice(0, Math.max(first, 0))
  const hashHex = vkey.slice(first + 1, Math.max(second, 0))
  const keyB64 = vkey.slice(second + 1)
  if (second < 0 || !isValidKeyName(name) || !/^[0-9a-f]{8}$/.test(hashHex)) throw new NoteError('a verifier key is <name>+<8 hex>+<base64 key>')
  const bytes = Buffer.from(keyB64, 'base64')
  if (bytes.toString('base64') !== keyB64 || bytes.byteLength !== 33) throw new NoteError('verifier key: the key is not base64 of 33 bytes')
  const alg = bytes[0] ?? 0
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) throw new NoteError(`verifier key: unsupported algorithm 0x${alg.toString(16).padStart(2, '0')}`)
  const raw = bytes.subarray(1)
  const hash = keyHash(name, alg, raw)
  if (hash !== parseInt(hashHex, 16)) throw new NoteError('verifier key: the key hash does not match the name and key')
  return { name, alg, keyHash: hash, publicKey: ed25519FromRaw(raw) }
}

function checkText (text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('note text must end with a newline')
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x09\x0b-\x1f]/.test(text)) throw new NoteError('note text must hold no control character but newline')
}

/** A signature line by an Ed25519 note key (alg 0x01) over `text`. */
export function signatureLine (text: string, name: string, privateKey: KeyObject): string {
  checkText(text)
  if (!isValidKeyName(name)) throw new NoteError(`invalid key name ${JSON.stringify(name.slice(0, 100))}`)
  const hash = Buffer.alloc(4)
  hash.writeUInt32BE(keyHash(name, ALG_ED25519, rawOf(privateKey)))
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey)
  return `${SIG_PREFIX}${name} ${Buffer.concat([hash, sig]).toString('base64')}`
}

/** The note: text, a blank line, the signature lines. */
export function formatNote (text: string, lines: readonly string[]): string {
  checkText(text)
  if (lines.length === 0) throw new NoteError('a signed note needs at least one signature')
  return `${text}\n${lines.map(l => `${l}\n`).join('')}`
}

/** Signs `text` with one Ed25519 note key. */
export function signNote (text: string, name: string, privateKey: KeyObject): string {
  return formatNote(text, [signatureLine(text, name, privateKey)])
}

/** Splits a note into its text and signature lines; checks the shape, verifies nothing. */
export function parseNote (note: string): ParsedNote {
  if (Buffer.byteLength(note, 'utf8') > NOTE_LIMITS.noteBytes) throw new LimitError('signed note', NOTE_LIMITS.noteBytes, Buffer.byteLength(note, 'utf8'))
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x09\x0b-\x1f\ufffd]/.test(note)) throw new NoteError('a signed note holds no control character but newline')
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw new NoteError('a signed note needs a blank line before its signatures')
  const text = note.slice(0, split + 1)
  const block = note.slice(split + 2)
  if (block.length === 0 || !block.endsWith('\n')) throw new NoteError('the signature block must be non-empty and end with a newline')
  const lines = block.slice(0, -1).split('\n')
  if (lines.length > NOTE_LIMITS.signatures) throw new LimitError('note signatures', NOTE_LIMITS.signatures, lines.length)
  const signatures = lines.map((line, i): NoteSignature => {
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError(`signature line ${i + 1} does not start with "— "`)
    const rest = line.slice(SIG_PREFIX.length)
    const space = rest.indexOf(' ')
    const name = space < 0 ? '' : rest.slice(0, space)
    const b64 = space < 0 ? '' : rest.slice(space + 1)
    const bytes = Buffer.from(b64, 'base64')
    if (!isValidKeyName(name) || b64 === '' || bytes.toString('base64') !== b64 || bytes.byteLength < 5) throw new NoteError(`signature line ${i + 1} is not "— <name> <base64>"`)
    return { name, keyHash: bytes.readUInt32BE(0), signature: bytes.subarray(4), line }
  })
  return { text, signatures }
}

/** Opens a note signed by `name`'s Ed25519 key; throws NoteError when that signature is missing or wrong. */
export function openNote (note: string, name: string, publicKey: KeyObject): ParsedNote {
  const parsed = parseNote(note)
  const hash = keyHash(name, ALG_ED25519, rawOf(publicKey))
  const mine = parsed.signatures.filter(s => s.name === name && s.keyHash === hash)
  if (mine.length === 0) throw new NoteError(`no signature by ${name}`)
  for (const s of mine) {
    if (!verifyEd25519(Buffer.from(parsed.text, 'utf8'), s.signature, publicKey)) throw new NoteError(`the signature by ${name} does not verify`)
  }
  return parsed
}
