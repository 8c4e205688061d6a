import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { publicPointProblem } from './ed25519.js'
import { ValidationError } from './errors.js'

/** An Ed25519 identity. `privateKey` is present only for our own identity. */
export interface Identity {
  /** `keyIdOf(publicKey)` */
  keyId: string
  publicKey: KeyObject
  privateKey?: KeyObject
  /** SPKI PEM of the public key. */
  publicKeyPem: string
}

export type SigningIdentity = Identity & { privateKey: KeyObject }

// Key ids are computed on every verification: cache them per KeyObject.
const keyIds = new WeakMap<KeyObject, string>()

/**
 * The key id: lowercase hex SHA-256 of the SPKI DER encoding of the public key
 * (64 hex characters). Stable across PEM formatting, unlike a hash of the PEM text.
 */
export function keyIdOf (publicKey: KeyObject): string {
  let id = keyIds.get(publicKey)
  if (id === undefined) {
    id = createHash('sha256').update(spkiDer(publicKey)).digest('hex')
    keyIds.set(publicKey, id)
  }
  return id
}

/** SPKI DER of a public key (44 bytes for Ed25519). */
export function spkiDer (publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' })
}

function fromKeys (publicKey: KeyObject, privateKey: KeyObject): SigningIdentity {
  return {
    keyId: keyIdOf(publicKey),
    publicKey,
    privateKey,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString()
  }
}

export function generateIdentity (): SigningIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  return fromKeys(publicKey, privateKey)
}

/** An identity from a PKCS#8 PEM private key; rejects anything but Ed25519. */
export function identityFromPrivatePem (pem: string): SigningIdentity {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new ValidationError('privateKey', `not a PKCS#8 PEM private key (${(err as Error).message})`)
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new ValidationError('privateKey', `expected an Ed25519 key, got ${privateKey.asymmetricKeyType ?? 'a symmetric key'}`)
  }
  return fromKeys(createPublicKey(privateKey), privateKey)
}

/** A public key from an SPKI PEM; rejects anything but Ed25519 (and private keys). */
export function publicKeyFromPem (pem: string): KeyObject {
  if (!pem.includes('-----BEGIN PUBLIC KEY-----')) {
    throw new ValidationError('publicKey', 'not an SPKI PEM public key (expected -----BEGIN PUBLIC KEY-----)')
  }
  let key: KeyObject
  try {
    key = createPublicKey({ key: pem, format: 'pem' })
  } catch (err) {
    throw new ValidationError('publicKey', `not an SPKI PEM public key (${(err as Error).message})`)
  }
  return checkedEd25519(key, 'publicKey')
}

/** A public key from its SPKI DER bytes; rejects anything but Ed25519. */
export function publicKeyFromDer (der: Uint8Array, field = 'publicKey'): KeyObject {
  let key: KeyObject
  try {
    key = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' })
  } catch (err) {
    throw new ValidationError(field, `not an SPKI DER public key (${(err as Error).message})`)
  }
  return checkedEd25519(key, field)
}

/** An Ed25519 public key that can verify signatures: not some other type, not a degenerate point. */
function checkedEd25519 (key: KeyObject, field: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ValidationError(field, `expected an Ed25519 key, got ${key.asymmetricKeyType ?? 'unknown'}`)
  }
  const problem = publicPointProblem(key)
  if (problem !== undefined) throw new ValidationError(field, problem)
  return key
}

/** PKCS#8 PEM of the private key. */
export function exportPrivatePem (identity: SigningIdentity): string {
  return identity.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
}
