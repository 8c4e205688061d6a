import { ValidationError } from './errors.js'

const PAD = 0x3d // '='

/**
 * Strict base64 decoding of the standard (RFC 4648 §4) or the URL-safe (§5) alphabet, one
 * alphabet per string, padding optional. Node's own decoder skips characters it does not
 * know, so the bytes are re-encoded and compared with the input: any stray character,
 * bad length or non-zero trailing bits shows up as a mismatch. Both steps are native,
 * which matters on the path of every message.
 */
export function decodeBase64 (field: string, value: string): Buffer {
  let end = value.length
  while (end > 0 && value.charCodeAt(end - 1) === PAD) end--
  const padding = value.length - end
  const urlSafe = value.includes('-') || value.includes('_')
  const bytes = Buffer.from(value, urlSafe ? 'base64url' : 'base64')
  const canonical = bytes.toString(urlSafe ? 'base64url' : 'base64')
  if (canonical === value) return bytes // the common case: canonical, padded as Node pads
  let canonicalEnd = canonical.length
  while (canonicalEnd > 0 && canonical.charCodeAt(canonicalEnd - 1) === PAD) canonicalEnd--
  const paddedOk = padding === 0 || (value.length % 4 === 0 && padding <= 2)
  if (!paddedOk || end !== canonicalEnd || !value.startsWith(canonical.slice(0, canonicalEnd))) {
    throw new ValidationError(field, 'not base64 (standard or URL-safe alphabet, optional padding)')
  }
  return bytes
}

export function encodeBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}
