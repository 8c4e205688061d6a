import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { envelopeId, MAX_VERIFY_ATTEMPTS, pae, PUBLIC_KEY_EXTENSION, signEnvelope, verifyEnvelope, type Envelope } from '../../src/protocol/dsse.js'
import { decodeBase64 } from '../../src/protocol/base64.js'
import { LimitError, SignatureError, ValidationError } from '../../src/protocol/errors.js'
import { keyIdOf } from '../../src/protocol/keys.js'
import { LIMITS } from '../../src/protocol/limits.js'
import { fixedIdentity } from './fixtures.js'

const alice = fixedIdentity(1)
const bob = fixedIdentity(2)
const TYPE = 'application/vnd.in-toto+json'
const body = new TextEncoder().encode('{"hello":"world"}')
const keys = (...ids: Array<typeof alice>): Map<string, typeof alice.publicKey> => new Map(ids.map(i => [i.keyId, i.publicKey]))
const clone = (e: Envelope): Envelope => JSON.parse(JSON.stringify(e)) as Envelope

function thrown (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('did not throw')
}

describe('pae', () => {
  it('matches the DSSE spec test vector', () => {
    const out = pae('http://example.com/HelloWorld', new TextEncoder().encode('hello world'))
    expect(Buffer.from(out).toString('utf8')).toBe('DSSEv1 29 http://example.com/HelloWorld 11 hello world')
  })

  it('counts UTF-8 bytes, not characters', () => {
    const out = Buffer.from(pae('tÿpe', new TextEncoder().encode('é'))).toString('utf8')
    expect(out).toBe('DSSEv1 5 tÿpe 2 é')
  })
})

describe('signEnvelope / verifyEnvelope', () => {
  const env = signEnvelope(TYPE, body, alice)

  it('round-trips with the policy key and reports the verifying key id', () => {
    const v = verifyEnvelope(env, { keys: keys(alice, bob) })
    expect(v.keyId).toBe(alice.keyId)
    expect(v.payloadType).toBe(TYPE)
    expect(Buffer.from(v.payload).equals(Buffer.from(body))).toBe(true)
  })

  it('embeds the public key in a v1.1 signature extension', () => {
    const sig = env.signatures[0]
    expect(sig?.keyid).toBe(alice.keyId)
    expect(sig?.extension?.kind).toBe(PUBLIC_KEY_EXTENSION)
    expect(keyIdOf(alice.publicKey)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('accepts JSON text and bytes as well as objects', () => {
    expect(verifyEnvelope(JSON.stringify(env), { keys: keys(alice) }).keyId).toBe(alice.keyId)
    expect(verifyEnvelope(Buffer.from(JSON.stringify(env)), { keys: keys(alice) }).keyId).toBe(alice.keyId)
  })

  it('rejects an unknown signer unless embedded keys are allowed', () => {
    expect(thrown(() => verifyEnvelope(env, { keys: keys(bob) }))).toBeInstanceOf(SignatureError)
    const v = verifyEnvelope(env, { keys: keys(bob), allowEmbeddedKeys: true })
    expect(v.keyId).toBe(alice.keyId)
  })

  it('rejects a tampered payload, payloadType or signature', () => {
    const p = clone(env)
    p.payload = Buffer.from('{"hello":"World"}').toString('base64')
    expect(thrown(() => verifyEnvelope(p, { keys: keys(alice), allowEmbeddedKeys: true }))).toBeInstanceOf(SignatureError)
    const t = clone(env)
    t.payloadType = 'application/json'
    expect(thrown(() => verifyEnvelope(t, { keys: keys(alice), allowEmbeddedKeys: true }))).toBeInstanceOf(SignatureError)
    const s = clone(env)
    const sig = Buffer.from(s.signatures[0]?.sig as string, 'base64')
    sig[10] = (sig[10] as number) ^ 1
    ;(s.signatures[0] as { sig: string }).sig = sig.toString('base64')
    expect(thrown(() => verifyEnvelope(s, { keys: keys(alice), allowEmbeddedKeys: true }))).toBeInstanceOf(SignatureError)
  })

  it('never trusts an embedded key swapped for another: the signature must still verify', () => {
    const e = clone(env)
    ;(e.signatures[0] as { extension: { ext: Record<string, unknown> } }).extension.ext.publicKey = bob.publicKey.export({ type: 'spki', format: 'der' }).toString('base64')
    expect(thrown(() => verifyEnvelope(e, { allowEmbeddedKeys: true }))).toBeInstanceOf(SignatureError)
  })

  it('accepts URL-safe base64 without padding', () => {
    const e = clone(env)
    const toUrl = (s: string): string => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
    e.payload = toUrl(e.payload)
    ;(e.signatures[0] as { sig: string }).sig = toUrl(e.signatures[0]?.sig as string)
    expect(verifyEnvelope(e, { keys: keys(alice) }).keyId).toBe(alice.keyId)
    expect(envelopeId(e)).toBe(envelopeId(env))
  })

  it('rejects invalid base64 characters and mixed alphabets', () => {
    const e = clone(env)
    e.payload = e.payload.slice(0, 4) + '!' + e.payload.slice(5)
    const err = thrown(() => verifyEnvelope(e, { keys: keys(alice) }))
    expect(err).toBeInstanceOf(ValidationError)
    expect((err as ValidationError).field).toBe('envelope.payload')
    const m = clone(env)
    ;(m.signatures[0] as { sig: string }).sig = '+' + '_' + (m.signatures[0]?.sig as string).slice(2)
    expect((thrown(() => verifyEnvelope(m, { keys: keys(alice) })) as ValidationError).field).toBe('envelope.signatures[0].sig')
  })

  it('uses the keyid only as a hint: a lying hint still verifies with the right policy key', () => {
    const e = clone(env)
    ;(e.signatures[0] as { keyid: string }).keyid = bob.keyId
    delete (e.signatures[0] as { extension?: unknown }).extension
    expect(verifyEnvelope(e, { keys: keys(alice, bob) }).keyId).toBe(alice.keyId)
    expect(thrown(() => verifyEnvelope(e, { keys: keys(bob) }))).toBeInstanceOf(SignatureError)
  })

  it('bounds the signature checks one envelope can cost', () => {
    const many = Array.from({ length: MAX_VERIFY_ATTEMPTS + 4 }, (_, i) => fixedIdentity(i + 10))
    const last = many[many.length - 1] as typeof alice
    const e = signEnvelope(TYPE, body, last)
    ;(e.signatures[0] as { keyid: string }).keyid = 'nobody'
    delete (e.signatures[0] as { extension?: unknown }).extension
    // The signer is the last of more policy keys than the budget allows: not found by scanning...
    expect(thrown(() => verifyEnvelope(e, { keys: keys(...many) }))).toBeInstanceOf(SignatureError)
    // ...but found at once with an honest hint.
    ;(e.signatures[0] as { keyid: string }).keyid = last.keyId
    expect(verifyEnvelope(e, { keys: keys(...many) }).keyId).toBe(last.keyId)
  })

  it('a hint naming a trusted key does not make a stranger trusted', () => {
    const stranger = signEnvelope(TYPE, body, fixedIdentity(9))
    ;(stranger.signatures[0] as { keyid: string }).keyid = alice.keyId
    const v = verifyEnvelope(stranger, { keys: keys(alice), allowEmbeddedKeys: true })
    expect(v.keyId).toBe(fixedIdentity(9).keyId)
    expect(v.keyId).not.toBe(alice.keyId)
  })

  it('checks the shape and names the field', () => {
    const cases: Array<[unknown, string]> = [
      [[], 'envelope'],
      [{ ...env, payload: 5 }, 'envelope.payload'],
      [{ ...env, signatures: [] }, 'envelope.signatures'],
      [{ ...env, signatures: [{ keyid: 5, sig: 'AA==' }] }, 'envelope.signatures[0].keyid'],
      [{ ...env, extra: 1 }, 'envelope.extra'],
      ['{not json', 'envelope']
    ]
    for (const [input, field] of cases) {
      const err = thrown(() => verifyEnvelope(input, { keys: keys(alice) }))
      expect(err, field).toBeInstanceOf(ValidationError)
      expect((err as ValidationError).field).toBe(field)
    }
  })

  it('applies limits before any crypto, naming the field', () => {
    const big = JSON.stringify({ ...env, payload: 'A'.repeat(LIMITS.envelopeBytes) })
    const e1 = thrown(() => verifyEnvelope(big, { keys: keys(alice) }))
    expect(e1).toBeInstanceOf(LimitError)
    expect((e1 as LimitError).field).toBe('envelope')
    const e2 = thrown(() => verifyEnvelope({ ...env, payload: 'A'.repeat(LIMITS.envelopeBytes) }, { keys: keys(alice) }))
    expect(e2).toBeInstanceOf(LimitError)
    expect((e2 as LimitError).field).toBe('envelope.payload')
    const many = { ...env, signatures: Array(LIMITS.signaturesPerEnvelope + 1).fill(env.signatures[0]) }
    expect((thrown(() => verifyEnvelope(many, { keys: keys(alice) })) as LimitError).field).toBe('envelope.signatures')
    expect((thrown(() => verifyEnvelope(env, { keys: keys(alice), maxBytes: 100 })) as LimitError).field).toBe('envelope')
  })
})

describe('strict base64', () => {
  it('accepts both alphabets with or without padding, and rejects the rest', () => {
    expect(decodeBase64('f', 'AAE=').toString('hex')).toBe('0001')
    expect(decodeBase64('f', 'AAE').toString('hex')).toBe('0001')
    expect(decodeBase64('f', '-_8').toString('hex')).toBe('fbff')
    expect(decodeBase64('f', '+/8=').toString('hex')).toBe('fbff')
    expect(decodeBase64('f', '').byteLength).toBe(0)
    for (const bad of ['AAF=', 'AAE==', 'A', 'AA=A', 'AA E', '+_8=', 'AAE===', 'AAAAA', 'é', 'AA\n']) {
      expect(() => decodeBase64('f', bad), JSON.stringify(bad)).toThrow(ValidationError)
    }
  })
})

describe('strict base64 against a reference', () => {
  // Reference: one alphabet by regular expression, then canonical by re-encoding.
  function reference (s: string): boolean {
    const url = /^[A-Za-z0-9_-]*={0,2}$/.test(s)
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) && !url) return false
    const bare = s.replace(/=+$/, '')
    if (bare.length !== s.length && s.length % 4 !== 0) return false
    const again = Buffer.from(s, 'base64').toString(url ? 'base64url' : 'base64').replace(/=+$/, '')
    return again === bare
  }
  it('accepts exactly what the reference accepts, with the same bytes', () => {
    const ch = fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_'.split(''), '=', ' ', '!', 'é', '\n', 'A', 'g', 'Q')
    const str = fc.oneof(
      fc.array(ch, { maxLength: 14 }).map(a => a.join('')),
      fc.uint8Array({ maxLength: 12 }).chain(b => fc.constantFrom(Buffer.from(b).toString('base64'), Buffer.from(b).toString('base64url'))))
    fc.assert(fc.property(str, s => {
      let got: Buffer | undefined
      try {
        got = decodeBase64('f', s)
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationError)
      }
      expect(got !== undefined, JSON.stringify(s)).toBe(reference(s))
      if (got !== undefined) expect(got.equals(Buffer.from(s, 'base64'))).toBe(true)
    }), { numRuns: 3000 })
  })
})

describe('verification results', () => {
  it('stay intact when more envelopes are verified afterwards', () => {
    const a = verifyEnvelope(signEnvelope(TYPE, body, alice), { keys: keys(alice) })
    verifyEnvelope(signEnvelope(TYPE, new TextEncoder().encode('something else entirely, and longer'), bob), { keys: keys(bob) })
    expect(Buffer.from(a.payload).toString()).toBe('{"hello":"world"}')
  })
})

describe('which signature a message is credited to', () => {
  const env = signEnvelope(TYPE, body, alice)
  const strangerSig = signEnvelope(TYPE, body, bob).signatures

  it('tries the policy keys across every signature before any embedded key', () => {
    const strangerFirst: Envelope = { ...env, signatures: [...strangerSig, ...env.signatures] }
    const v = verifyEnvelope(strangerFirst, { keys: keys(alice), allowEmbeddedKeys: true })
    expect([v.keyId, v.signatureIndex]).toEqual([alice.keyId, 1])
    // Without a policy key among them, the first embedded key that verifies.
    expect(verifyEnvelope(strangerFirst, { allowEmbeddedKeys: true }).keyId).toBe(bob.keyId)
  })

  it('reads an unset keyid as an empty one', () => {
    const e = clone(env)
    delete (e.signatures[0] as { keyid?: string }).keyid
    expect(verifyEnvelope(e, { keys: keys(alice) }).keyId).toBe(alice.keyId)
    delete (e.signatures[0] as { extension?: unknown }).extension
    expect(verifyEnvelope(e, { keys: keys(bob, alice) }).keyId).toBe(alice.keyId)
    expect(envelopeId(e)).toBe(envelopeId(env))
  })
})

describe('envelopeId', () => {
  const env = signEnvelope(TYPE, body, alice)

  it('is stable under unauthenticated changes (keyid hint, extension)', () => {
    const e = clone(env)
    ;(e.signatures[0] as { keyid: string }).keyid = 'whatever'
    delete (e.signatures[0] as { extension?: unknown }).extension
    expect(envelopeId(e)).toBe(envelopeId(env))
    expect(envelopeId(env)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('differs for a different payload or signer', () => {
    expect(envelopeId(signEnvelope(TYPE, new TextEncoder().encode('x'), alice))).not.toBe(envelopeId(env))
    expect(envelopeId(signEnvelope(TYPE, body, bob))).not.toBe(envelopeId(env))
  })

  it('covers only the signature the message is credited to', () => {
    const b = signEnvelope(TYPE, body, bob)
    const ab: Envelope = { ...env, signatures: [env.signatures[0], b.signatures[0]] as Envelope['signatures'] }
    const ba: Envelope = { ...env, signatures: [b.signatures[0], env.signatures[0], b.signatures[0]] as Envelope['signatures'] }
    const v = verifyEnvelope(ba, { keys: keys(alice) })
    expect(v.keyId).toBe(alice.keyId)
    expect(v.signatureIndex).toBe(1)
    expect(envelopeId(ba, v.signatureIndex)).toBe(envelopeId(env))
    expect(envelopeId(ab)).toBe(envelopeId(env))
    expect(envelopeId(ba)).toBe(envelopeId(b))
  })
})
