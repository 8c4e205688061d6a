import { ValidationError } from './errors.js'

// The 6-bit value of each base64 character of either alphabet, for the trailing-bits check.
const VALUE = new Uint8Array(128)
const CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
for (let i = 0; i < CHARS.length; i++) VALUE[CHARS.charCodeAt(i)] = i
VALUE[0x2b] = 62 // +
VALUE[0x2f] = 63 // /
VALUE[0x2d] = 62 // -
VALUE[0x5f] = 63 // _

const PAD = 0x3d // '='

/**
 * Everything about a base64 string but its characters: padding, length, one alphabet
 * (standard, RFC 4648 §4, or URL-safe, §5), canonical trailing bits. Returns the length
 * its decoding must have. The characters are checked by decoding: Node's decoder skips
 * any character outside both alphabets (and stops at an inner `=`), so a string with one
 * decodes to fewer bytes than this. That keeps the check native and allocation-free on a
 * path every message takes.
 */
export function decodedLength (field: string, value: string): number {
  let end = value.length
  while (end > 0 && value.charCodeAt(end - 1) === PAD) end--
  const padding = value.length - end
  const rest = end % 4
  if (rest === 1 || padding > 2 || (padding > 0 && value.length % 4 !== 0)) {
    throw new ValidationError(field, 'not base64 (bad length or padding)')
  }
  if ((value.includes('-') || value.includes('_')) && (value.includes('+') || value.includes('/'))) {
    throw new ValidationError(field, 'not base64 (mixes the standard and URL-safe alphabets)')
  }
  if (rest !== 0) {
    const c = value.charCodeAt(end - 1)
    const last = c < 128 ? VALUE[c] as number : 0
    if ((rest === 2 && (last & 0x0f) !== 0) || (rest === 3 && (last & 0x03) !== 0)) {
      throw new ValidationError(field, 'not base64 (non-canonical trailing bits)')
    }
  }
  return (end >> 2) * 3 + (rest === 0 ? 0 : rest - 1)
}

const badCharacter = (field: string): ValidationError => new ValidationError(field, 'not base64 (a character outside the standard and URL-safe alphabets)')

/** Strict base64 decoding: either alphabet, padding optional, canonical encodings only. */
export function decodeBase64 (field: string, value: string): Buffer {
  const n = decodedLength(field, value)
  const bytes = Buffer.from(value, 'base64') // reads both alphabets
  if (bytes.byteLength !== n) throw badCharacter(field)
  return bytes
}

/**
 * Strict base64 decoding into `target` at `offset`, of a value whose `decodedLength` is `n`
 * (measured first, so that the caller can place the bytes).
 */
export function decodeBase64Into (field: string, value: string, n: number, target: Buffer, offset: number): void {
  if (target.write(value, offset, n, 'base64') !== n) throw badCharacter(field)
}

export function encodeBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
