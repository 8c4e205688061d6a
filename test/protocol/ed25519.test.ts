import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { publicPointProblem, rawPublicKey, verifyEd25519 } from '../../src/protocol/ed25519.js'
import { ValidationError } from '../../src/protocol/errors.js'
import { publicKeyFromDer, publicKeyFromPem } from '../../src/protocol/keys.js'

// RFC 8032 §7.1, tests 1 to 3: secret key, public key, message, signature.
const RFC8032 = [
  ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
  ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72',
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82',
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a']
] as const

// DER headers of Ed25519 keys (RFC 8410): the raw key bytes follow.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const spki = (raw: Buffer): Buffer => Buffer.concat([SPKI_PREFIX, raw])
// The group order L, little-endian, for a signature whose S is pushed past it.
const L = (1n << 252n) + 27742317777372353535851937790883648493n

function addL (sig: Buffer): Buffer {
  const s = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L
  const bytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse()
  return Buffer.concat([sig.subarray(0, 32), bytes])
}

describe('ed25519 (libsodium)', () => {
  it('verifies the RFC 8032 vectors, which node:crypto signs byte for byte', () => {
    for (const [secret, pub, msg, sig] of RFC8032) {
      const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(secret, 'hex')]), format: 'der', type: 'pkcs8' })
      const publicKey = createPublicKey(privateKey)
      const message = Buffer.from(msg, 'hex')
      expect(rawPublicKey(publicKey)?.toString('hex')).toBe(pub)
      expect(sign(null, message, privateKey).toString('hex')).toBe(sig)
      expect(verifyEd25519(message, Buffer.from(sig, 'hex'), publicKey)).toBe(true)
      const flipped = Buffer.from(sig, 'hex')
      flipped[10] = (flipped[10] as number) ^ 1
      expect(verifyEd25519(message, flipped, publicKey)).toBe(false)
    }
  })

  it('agrees with node:crypto on signatures it makes, and on any changed byte', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.boolean(), (bytes, at, inSignature) => {
      const message = Buffer.from(bytes)
      const sig = sign(null, message, privateKey)
      expect(verifyEd25519(message, sig, publicKey)).toBe(true)
      expect(verifyEd25519(new Uint8Array(message), new Uint8Array(sig), publicKey)).toBe(true)
      const target = inSignature || message.byteLength === 0 ? sig : message
      const i = at % target.byteLength
      target[i] = (target[i] as number) ^ 0x40
      expect(verifyEd25519(message, sig, publicKey)).toBe(verify(null, message, publicKey, sig))
      expect(verifyEd25519(message, sig, publicKey)).toBe(false)
    }), { numRuns: 200 })
  })

  it('rejects a signature whose S is not reduced (S + L), as node:crypto does', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const message = Buffer.from('claim')
    const malleated = addL(sign(null, message, privateKey))
    expect(verify(null, message, publicKey, malleated)).toBe(false)
    expect(verifyEd25519(message, malleated, publicKey)).toBe(false)
  })

  it('answers false, never throws, for a wrong-length signature or a key of another type', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const sig = sign(null, Buffer.from('x'), privateKey)
    expect(verifyEd25519(Buffer.from('x'), sig.subarray(0, 63), publicKey)).toBe(false)
    expect(verifyEd25519(Buffer.from('x'), Buffer.concat([sig, Buffer.from([0])]), publicKey)).toBe(false)
    const x25519 = generateKeyPairSync('x25519').publicKey
    expect(rawPublicKey(x25519)).toBeUndefined()
    expect(verifyEd25519(Buffer.from('x'), sig, x25519)).toBe(false)
    expect(rawPublicKey(privateKey)).toBeUndefined()
  })

  it('names a small-order key at parse time, which node:crypto alone would accept', () => {
    // The neutral point (y = 1): every "signature" with R = neutral, S = 0 would pass a
    // check that took it, for any message.
    const neutral = Buffer.alloc(32)
    neutral[0] = 1
    const der = spki(neutral)
    expect(createPublicKey({ key: der, format: 'der', type: 'spki' }).asymmetricKeyType).toBe('ed25519')
    expect(publicPointProblem(createPublicKey({ key: der, format: 'der', type: 'spki' }))).toMatch(/small order/)
    expect(() => publicKeyFromDer(der, 'policy.builders[0].publicKey')).toThrow(ValidationError)
    expect(() => publicKeyFromDer(der, 'policy.builders[0].publicKey')).toThrow(/policy\.builders\[0\]\.publicKey.*small order/)
    const pem = `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`
    expect(() => publicKeyFromPem(pem)).toThrow(/publicKey.*not a usable Ed25519 point/)
    // A real key still parses.
    const good = generateKeyPairSync('ed25519').publicKey
    expect(publicPointProblem(good)).toBeUndefined()
    expect(publicKeyFromDer(good.export({ type: 'spki', format: 'der' })).equals(good)).toBe(true)
  })
})
