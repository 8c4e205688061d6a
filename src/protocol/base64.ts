import { ValidationError } from './errors.js'

// One alphabet per string: standard (RFC 4648 §4) or URL-safe (§5), padding optional.
const STANDARD = /^[A-Za-z0-9+/]*={0,2}$/
const URL_SAFE = /^[A-Za-z0-9_-]*={0,2}$/

/**
 * Strict base64 decoding: Node's own decoder skips characters it does not know, which
 * would let two different strings carry the same bytes unnoticed, so the alphabet and
 * length are checked first.
 */
export function decodeBase64 (field: string, value: string): Buffer {
  if (!STANDARD.test(value) && !URL_SAFE.test(value)) {
    throw new ValidationError(field, 'not base64 (standard or URL-safe alphabet, optional padding)')
  }
  const unpadded = value.replace(/=+$/, '')
  if (unpadded.length % 4 === 1 || (value.length !== unpadded.length && value.length % 4 !== 0)) {
    throw new ValidationError(field, 'not base64 (bad length or padding)')
  }
  return Buffer.from(value, 'base64')
}

export function encodeBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
