/**
 * Ed25519 signature checks through libsodium (sodium-native) rather than node:crypto.
 *
 * Why: checking signatures is most of what a node does with its CPU, and libsodium's
 * verify, with 64-bit field arithmetic, runs about 1.75 times as fast as OpenSSL's on the
 * machines measured (benchmarks/verify.ts prints both). Keys, key files and signing stay
 * on node:crypto; only the check moves.
 *
 * libsodium checks what RFC 8032 asks (S below the group order, a decodable key, R
 * recomputed byte for byte) and refuses outright small-order or non-canonical keys and a
 * small-order R. No key made by `generateKeyPairSync` or any honest signer is refused, and
 * `publicPointProblem` lets key parsers name such a key up front instead of leaving it to
 * fail every check.
 */
import type { KeyObject } from 'node:crypto'
import sodium from 'sodium-native'

const SPKI_PREFIX_LENGTH = 12 // the fixed SPKI DER header of an Ed25519 key
const PUBLIC_KEY_LENGTH = 32
const SIGNATURE_LENGTH = 64

// Raw keys are needed on every check: cache them per KeyObject (policies hold a few).
const rawKeys = new WeakMap<KeyObject, Buffer | null>()

/** The 32-byte public key of an Ed25519 KeyObject; undefined for any other key. */
export function rawPublicKey (key: KeyObject): Buffer | undefined {
  let raw = rawKeys.get(key)
  if (raw === undefined) {
    raw = key.type === 'public' && key.asymmetricKeyType === 'ed25519'
      ? key.export({ type: 'spki', format: 'der' }).subarray(SPKI_PREFIX_LENGTH)
      : null
    if (raw !== null && raw.byteLength !== PUBLIC_KEY_LENGTH) raw = null
    rawKeys.set(key, raw)
  }
  return raw ?? undefined
}

/** Whether `signature` is `key`'s Ed25519 signature of `message` (RFC 8032, cofactorless). */
export function verifyEd25519 (message: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  const raw = rawPublicKey(key)
  if (raw === undefined || signature.byteLength !== SIGNATURE_LENGTH) return false
  return sodium.crypto_sign_verify_detached(signature as Buffer, message as Buffer, raw)
}

/**
 * Why a public key cannot verify anything, or undefined when it can: the point must be
 * canonically encoded, on the curve, and in the prime-order subgroup.
 */
export function publicPointProblem (key: KeyObject): string | undefined {
  const raw = rawPublicKey(key)
  if (raw === undefined) return 'not an Ed25519 public key'
  if (!sodium.crypto_core_ed25519_is_valid_point(raw)) return 'not a usable Ed25519 point (small order, outside the prime-order subgroup, or not canonically encoded)'
  return undefined
}
