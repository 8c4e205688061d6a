import { ValidationError } from './errors.js'

// Per ASCII code: 0 = not base64, 1 = in both alphabets, 2 = standard only (+ /), 3 = URL-safe only (- _).
const KIND = new Uint8Array(128)
// Per ASCII code: the 6-bit value of the character.
const VALUE = new Uint8Array(128)
const CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
for (let i = 0; i < CHARS.length; i++) {
  KIND[CHARS.charCodeAt(i)] = 1
  VALUE[CHARS.charCodeAt(i)] = i
}
KIND[0x2b] = 2; VALUE[0x2b] = 62 // +
KIND[0x2f] = 2; VALUE[0x2f] = 63 // /
KIND[0x2d] = 3; VALUE[0x2d] = 62 // -
KIND[0x5f] = 3; VALUE[0x5f] = 63 // _

const PAD = 0x3d // '='

/**
 * Checks a base64 string strictly and returns its decoded length: the standard (RFC 4648
 * §4) or the URL-safe (§5) alphabet, one per string, padding optional but correct, and the
 * canonical encoding only (unused trailing bits zero). Node's own decoder silently skips
 * characters it does not know, so it cannot be the check. Allocation-free: it runs on
 * every message.
 */
export function checkBase64 (field: string, value: string): number {
  let end = value.length
  while (end > 0 && value.charCodeAt(end - 1) === PAD) end--
  const padding = value.length - end
  if (end % 4 === 1 || padding > 2 || (padding > 0 && value.length % 4 !== 0)) {
    throw new ValidationError(field, 'not base64 (bad length or padding)')
  }
  let standard = false
  let urlSafe = false
  for (let i = 0; i < end; i++) {
    const c = value.charCodeAt(i)
    const kind = c < 128 ? KIND[c] : 0
    if (kind === 0) throw new ValidationError(field, `not base64 (character ${JSON.stringify(value[i])} at ${i})`)
    if (kind === 2) standard = true
    else if (kind === 3) urlSafe = true
  }
  if (standard && urlSafe) throw new ValidationError(field, 'not base64 (mixes the standard and URL-safe alphabets)')
  const rest = end % 4
  if (rest !== 0) {
    const last = VALUE[value.charCodeAt(end - 1)] as number
    if ((rest === 2 && (last & 0x0f) !== 0) || (rest === 3 && (last & 0x03) !== 0)) {
      throw new ValidationError(field, 'not base64 (non-canonical trailing bits)')
    }
  }
  return (end >> 2) * 3 + (rest === 0 ? 0 : rest - 1)
}

/** Strict base64 decoding (see `checkBase64`). */
export function decodeBase64 (field: string, value: string): Buffer {
  checkBase64(field, value)
  // Node's base64 decoder reads both alphabets.
  return Buffer.from(value, 'base64')
}

export function encodeBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
