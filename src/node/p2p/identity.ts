import { privateKeyFromRaw, publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { ed25519FromRaw } from '../../protocol/tlog/note.js'
import type { KeyObject } from 'node:crypto'
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface'
import { IdentityKeyError } from './errors.js'

function jwkPart (key: KeyObject, part: 'd' | 'x'): Uint8Array {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IdentityKeyError(`expected an Ed25519 key, got ${key.asymmetricKeyType ?? key.type}`)
  }
  const jwk = key.export({ format: 'jwk' })
  const value = jwk[part]
  if (typeof value !== 'string') {
    throw new IdentityKeyError(part === 'd' ? 'expected a private key' : 'key has no public part')
  }
  return Buffer.from(value, 'base64url')
}

/**
 * The node's libp2p identity is its Ed25519 signing key, so a PeerId and a builder
 * key id name one identity: the peer authenticated by the Noise handshake and the signer of
 * its claims agree.
 */
export function libp2pKeyFromIdentity (privateKey: KeyObject): Ed25519PrivateKey {
  if (privateKey.type !== 'private') throw new IdentityKeyError('expected a private key')
  // libp2p's raw Ed25519 private key is the 32-byte seed (JWK `d`) followed by the public key (JWK `x`).
  const raw = Buffer.concat([jwkPart(privateKey, 'd'), jwkPart(privateKey, 'x')])
  const key = privateKeyFromRaw(raw)
  if (key.type !== 'Ed25519') throw new IdentityKeyError(`expected an Ed25519 key, got ${key.type}`)
  return key
}

/** PeerId of an Ed25519 key (public or private KeyObject). */
export function peerIdOfKey (key: KeyObject): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(jwkPart(key, 'x')))
}

/** PeerId string (`12D3KooW…`) of an Ed25519 key, as `P2PNode.peerId` and gossip `from` report it. */
export function peerIdOf (key: KeyObject): string {
  return peerIdOfKey(key).toString()
}

/** The Ed25519 public key a PeerId string (`12D3KooW…`) embeds; throws IdentityKeyError for any other. */
export function keyOfPeerId (peerId: string): KeyObject {
  let id: PeerId
  try {
    id = peerIdFromString(peerId)
  } catch (err) {
    throw new IdentityKeyError(`not a peer id: ${(err as Error).message}`)
  }
  if (id.type !== 'Ed25519') throw new IdentityKeyError(`expected an Ed25519 peer id, got ${id.type}`)
  return ed25519FromRaw(id.publicKey.raw)
}
