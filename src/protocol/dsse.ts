import { createHash, hash, sign, type KeyObject } from 'node:crypto'
import { decodeBase64, decodeBase64Into, decodedLength, encodeBase64 } from './base64.js'
import { verifyEd25519 } from './ed25519.js'
import { LimitError, SignatureError, ValidationError } from './errors.js'
import { keyIdOf, publicKeyFromDer, spkiDer, type Identity, type SigningIdentity } from './keys.js'
import { LIMITS } from './limits.js'

/** A DSSE v1 envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md). */
export interface Envelope {
  /** base64 of the payload bytes */
  payload: string
  payloadType: string
  signatures: DsseSignature[]
}

export interface DsseSignature {
  /** Unauthenticated hint: which key made `sig`. DSSE: an unset keyid is read as an empty one. */
  keyid?: string
  /** base64 of the signature over `pae(payloadType, payload)` */
  sig: string
  /** DSSE v1.1 signature extension; unauthenticated. */
  extension?: { kind: string, ext: Record<string, unknown> }
}

export interface VerifiedEnvelope {
  payloadType: string
  payload: Uint8Array
  /** `keyIdOf(publicKey)` of the key that verified a signature (never the hint). */
  keyId: string
  publicKey: KeyObject
  envelope: Envelope
  /** Position of the signature the message is credited to (the one that verified). */
  signatureIndex: number
}

export interface VerifyOptions {
  /** Keys to try, by key id (a trust policy's keys). */
  keys?: ReadonlyMap<string, KeyObject>
  /** Also try the public key embedded in a signature extension; trust still comes only from a policy. */
  allowEmbeddedKeys?: boolean
  /** Limit on the envelope's size; defaults to `LIMITS.envelopeBytes`. */
  maxBytes?: number
}

/** Signature extension kind that carries the signer's public key (base64 SPKI DER in `ext.publicKey`). */
export const PUBLIC_KEY_EXTENSION = 'application/vnd.neko-rebuilder.publickey;version=1'

/** Signature verifications one envelope may cost, whatever its keyid hints say. */
export const MAX_VERIFY_ATTEMPTS = 16


/** DSSE v1 pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`. */
export function pae (payloadType: string, payload: Uint8Array): Uint8Array {
  const head = `DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.byteLength} `
  const headLength = Buffer.byteLength(head)
  const out = Buffer.allocUnsafe(headLength + payload.byteLength)
  out.write(head, 0, 'utf8')
  out.set(payload, headLength)
  return out
}

/** Sign `payload` with one Ed25519 key; the signature embeds the public key so strangers' claims can still be checked (and shown as untrusted). */
export function signEnvelope (payloadType: string, payload: Uint8Array, identity: SigningIdentity): Envelope {
  const sig = sign(null, pae(payloadType, payload), identity.privateKey)
  return {
    payload: encodeBase64(payload),
    payloadType,
    signatures: [{
      keyid: identity.keyId,
      sig: sig.toString('base64'),
      extension: { kind: PUBLIC_KEY_EXTENSION, ext: { publicKey: encodeBase64(spkiDer(identity.publicKey)) } }
    }]
  }
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function checkString (field: string, v: unknown, max: number): string {
  if (typeof v !== 'string') throw new ValidationError(field, `expected a string, got ${v === null ? 'null' : typeof v}`)
  if (v.length > max) throw new LimitError(field, max, v.length)
  return v
}

function onlyKeys (field: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new ValidationError(field === '' ? k : `${field}.${k}`, 'unknown field')
  }
}

/**
 * Checks the shape and limits of an envelope without any crypto or payload parsing.
 * Accepts the envelope as JSON text, UTF-8 bytes or an already parsed object.
 */
export function checkEnvelope (input: unknown, maxBytes: number = LIMITS.envelopeBytes): Envelope {
  let obj: unknown = input
  if (typeof input === 'string' || input instanceof Uint8Array) {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: text is measured only when that bound is over.
    const size = typeof input !== 'string' ? input.byteLength : input.length * 3 > maxBytes ? Buffer.byteLength(input) : undefined
    if (size !== undefined && size > maxBytes) throw new LimitError('envelope', maxBytes, size)
    try {
      obj = JSON.parse(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8'))
    } catch (err) {
      throw new ValidationError('envelope', `not JSON (${(err as Error).message})`)
    }
  }
  if (!isRecord(obj)) throw new ValidationError('envelope', 'expected a JSON object')
  onlyKeys('envelope', obj, ['payload', 'payloadType', 'signatures'])
  const payloadMax = Math.ceil(LIMITS.payloadBytes / 3) * 4
  const payload = checkString('envelope.payload', obj.payload, payloadMax)
  const payloadType = checkString('envelope.payloadType', obj.payloadType, LIMITS.payloadTypeLength)
  const sigs = obj.signatures
  if (!Array.isArray(sigs)) throw new ValidationError('envelope.signatures', 'expected an array')
  if (sigs.length === 0) throw new ValidationError('envelope.signatures', 'no signatures')
  if (sigs.length > LIMITS.signaturesPerEnvelope) throw new LimitError('envelope.signatures', LIMITS.signaturesPerEnvelope, sigs.length)
  // An object handed in directly was never measured as text: measure what it carries.
  let size = payload.length + payloadType.length
  for (let i = 0; i < sigs.length; i++) {
    const field = `envelope.signatures[${i}]`
    const s: unknown = sigs[i]
    if (!isRecord(s)) throw new ValidationError(field, 'expected a JSON object')
    onlyKeys(field, s, ['keyid', 'sig', 'extension'])
    if (s.keyid !== undefined) size += checkString(`${field}.keyid`, s.keyid, LIMITS.keyIdLength).length
    size += checkString(`${field}.sig`, s.sig, LIMITS.signatureLength).length
    if (s.extension !== undefined) {
      const ext: unknown = s.extension
      if (!isRecord(ext)) throw new ValidationError(`${field}.extension`, 'expected a JSON object')
      onlyKeys(`${field}.extension`, ext, ['kind', 'ext'])
      size += checkString(`${field}.extension.kind`, ext.kind, LIMITS.payloadTypeLength).length
      if (!isRecord(ext.ext)) throw new ValidationError(`${field}.extension.ext`, 'expected a JSON object')
      if (ext.kind === PUBLIC_KEY_EXTENSION) {
        onlyKeys(`${field}.extension.ext`, ext.ext, ['publicKey'])
        size += checkString(`${field}.extension.ext.publicKey`, ext.ext.publicKey, LIMITS.embeddedKeyLength).length
      } else {
        // Unknown extensions are ignored (DSSE v1.1) but still bounded.
        const len = JSON.stringify(ext.ext).length
        if (len > LIMITS.embeddedKeyLength * 4) throw new LimitError(`${field}.extension.ext`, LIMITS.embeddedKeyLength * 4, len)
        size += len
      }
    }
  }
  if (size > maxBytes) throw new LimitError('envelope', maxBytes, size)
  return obj as unknown as Envelope
}

// Embedded keys repeat across many messages from one builder: parse each once.
const embeddedKeyCache = new Map<string, KeyObject>()
const EMBEDDED_KEY_CACHE_SIZE = 4096

function embeddedKey (field: string, b64: string): KeyObject {
  let key = embeddedKeyCache.get(b64)
  if (key === undefined) {
    key = publicKeyFromDer(decodeBase64(field, b64), field)
    if (embeddedKeyCache.size >= EMBEDDED_KEY_CACHE_SIZE) embeddedKeyCache.clear()
    embeddedKeyCache.set(b64, key)
  }
  return key
}

// PAE bytes are assembled in one buffer reused by every verification (verification is
// synchronous, so nothing else can touch it meanwhile): no per-message allocation for the
// payload or the PAE. Views into it never leave this module's callers unsynchronised.
const SCRATCH = Buffer.allocUnsafe(LIMITS.payloadBytes + 4 * LIMITS.payloadTypeLength + 64)
// The same for batches: the PAE bytes of many envelopes side by side. It holds at least
// four envelopes of the largest size, and a batch that fills it is verified in parts.
const BATCH_SCRATCH = Buffer.allocUnsafe(4 * SCRATCH.byteLength)
// The bytes an envelope id hashes: PAE, then the credited signature.
const ID_SCRATCH = Buffer.allocUnsafe(SCRATCH.byteLength + 64 + LIMITS.signatureLength)

/**
 * What a verification leaves in the scratch buffer: valid only until the next verification,
 * so callers must finish with `scratch` before verifying anything else.
 */
export interface VerifiedScratch {
  payloadType: string
  /** `pae(payloadType, payload)`: a view into a shared scratch buffer. */
  pae: Buffer
  /** Offset of the payload inside `pae`. */
  payloadOffset: number
  keyId: string
  publicKey: KeyObject
  envelope: Envelope
  signatureBytes: Buffer[]
  /** Position of the signature that verified: the one the message is credited to, and its id. */
  signatureIndex: number
}

/** An envelope whose shape, limits and base64 are checked, with its PAE bytes written out: everything but the signature check. */
interface Prepared {
  env: Envelope
  /** `pae(payloadType, payload)`, in a scratch buffer. */
  message: Buffer
  payloadOffset: number
  signatureBytes: Buffer[]
}

/**
 * Write the PAE bytes of a checked envelope into `target` at `at`. Returns undefined,
 * having written nothing, when they would run past the end of `target`.
 */
function prepare (env: Envelope, target: Buffer, at: number): Prepared | undefined {
  // The PAE header needs the payload length, known from the base64 length before decoding.
  const n = decodedLength('envelope.payload', env.payload)
  if (n > LIMITS.payloadBytes) throw new LimitError('envelope.payload', LIMITS.payloadBytes, n)
  const head = `DSSEv1 ${Buffer.byteLength(env.payloadType)} ${env.payloadType} ${n} `
  const headLength = Buffer.byteLength(head)
  if (at + headLength + n > target.byteLength) return undefined
  target.write(head, at, 'utf8')
  decodeBase64Into('envelope.payload', env.payload, n, target, at + headLength)
  const signatureBytes = env.signatures.map((s, i) => decodeBase64(`envelope.signatures[${i}].sig`, s.sig))
  return { env, message: target.subarray(at, at + headLength + n), payloadOffset: headLength, signatureBytes }
}

/** The signature check of a prepared envelope; see `verifyEnvelopeInPlace`. */
function verifyPrepared (p: Prepared, opts: VerifyOptions): VerifiedScratch {
  const { env, message, signatureBytes } = p
  const result = (keyId: string, publicKey: KeyObject, signatureIndex: number): VerifiedScratch =>
    ({ payloadType: env.payloadType, pae: message, payloadOffset: p.payloadOffset, keyId, publicKey, envelope: env, signatureBytes, signatureIndex })
  const keys = opts.keys ?? new Map<string, KeyObject>()
  const embedded: Array<{ key: KeyObject, id: string } | undefined> = env.signatures.map((s, i) => {
    const extKey = s.extension?.kind === PUBLIC_KEY_EXTENSION ? s.extension.ext.publicKey : undefined
    if (typeof extKey !== 'string') return undefined
    const key = embeddedKey(`envelope.signatures[${i}].extension.ext.publicKey`, extKey)
    return { key, id: keyIdOf(key) }
  })
  let attempts = 0
  // Policy keys first, across every signature (DSSE): a stranger's signature placed first
  // must not take the credit, or the vote, from a trusted co-signer.
  for (let i = 0; i < env.signatures.length; i++) {
    const sig = signatureBytes[i] as Buffer
    if (sig.byteLength !== 64) continue // not an Ed25519 signature: no key can verify it
    const hint = env.signatures[i]?.keyid ?? ''
    const own = embedded[i]
    // The hint first, then the policy key the embedded key names. Only a signature that
    // names no key of its own is tried against the rest of the policy: a stranger's message
    // with an embedded key then costs one check, not one per policy key.
    const order: string[] = []
    if (keys.has(hint)) order.push(hint)
    if (own !== undefined && keys.has(own.id) && own.id !== hint) order.push(own.id)
    if (own === undefined) for (const id of keys.keys()) if (id !== hint) order.push(id)
    for (const id of order) {
      if (attempts++ >= MAX_VERIFY_ATTEMPTS) break
      const key = keys.get(id) as KeyObject
      if (verifyEd25519(message, sig, key)) return result(id, key, i)
    }
  }
  if (opts.allowEmbeddedKeys === true) {
    for (let i = 0; i < env.signatures.length; i++) {
      const own = embedded[i]
      const sig = signatureBytes[i] as Buffer
      if (own === undefined || sig.byteLength !== 64 || keys.has(own.id)) continue
      if (attempts++ >= MAX_VERIFY_ATTEMPTS) break
      if (verifyEd25519(message, sig, own.key)) return result(own.id, own.key, i)
    }
  }
  throw new SignatureError(`envelope.signatures: no signature verifies with ${opts.allowEmbeddedKeys === true ? 'a policy key or an embedded key' : 'a policy key'}`)
}

/**
 * The verification itself, without copying the payload out. Used by `verifyEnvelope` and
 * `decodeMessage`; see `VerifiedScratch` for the lifetime of the result.
 */
export function verifyEnvelopeInPlace (input: unknown, opts: VerifyOptions = {}): VerifiedScratch {
  return verifyPrepared(prepare(checkEnvelope(input, opts.maxBytes ?? LIMITS.envelopeBytes), SCRATCH, 0) as Prepared, opts)
}

/** One envelope's outcome in `verifyEnvelopesInPlace`. */
export interface BatchVerification {
  /** Position in the inputs. */
  index: number
  result: VerifiedScratch | Error
}

/**
 * `verifyEnvelopeInPlace` for many envelopes, with the same checks and errors. The
 * envelopes are checked and their PAE bytes written side by side first, then every
 * signature is checked in one run: the signature code and its tables stay in the CPU
 * caches instead of taking turns with the JSON parser. `onPart` gets the outcomes in input
 * order, a part at a time; the `pae` views in a part are valid only during that call.
 */
export function verifyEnvelopesInPlace (inputs: readonly unknown[], opts: VerifyOptions, onPart: (part: BatchVerification[]) => void): void {
  const maxBytes = opts.maxBytes ?? LIMITS.envelopeBytes
  let part: Array<{ index: number, result: Prepared | Error }> = []
  let at = 0
  const flush = (): void => {
    onPart(part.map(({ index, result }) => {
      if (result instanceof Error) return { index, result }
      try {
        return { index, result: verifyPrepared(result, opts) }
      } catch (err) {
        return { index, result: err as Error }
      }
    }))
    part = []
    at = 0
  }
  for (let index = 0; index < inputs.length; index++) {
    try {
      const env = checkEnvelope(inputs[index], maxBytes)
      let p = prepare(env, BATCH_SCRATCH, at)
      if (p === undefined) {
        flush()
        p = prepare(env, BATCH_SCRATCH, 0) as Prepared
      }
      at += p.message.byteLength
      part.push({ index, result: p })
    } catch (err) {
      part.push({ index, result: err as Error })
    }
  }
  flush()
}

/**
 * Verify a DSSE envelope. Shape and limits are checked before any crypto; the keyid is
 * only a hint. Nothing in the payload is parsed here.
 */
export function verifyEnvelope (input: unknown, opts: VerifyOptions = {}): VerifiedEnvelope {
  const v = verifyEnvelopeInPlace(input, opts)
  return {
    payloadType: v.payloadType,
    payload: Uint8Array.prototype.slice.call(v.pae, v.payloadOffset),
    keyId: v.keyId,
    publicKey: v.publicKey,
    envelope: v.envelope,
    signatureIndex: v.signatureIndex
  }
}

/** The verified envelope plus the decoded signatures and the PAE bytes, so callers need not decode twice. */
export interface VerifiedParts extends VerifiedEnvelope {
  signatureBytes: Buffer[]
  /** `pae(payloadType, payload)` (a copy of its own). */
  pae: Uint8Array
}

/** `verifyEnvelope` that also returns the decoded signatures and the PAE bytes (for `envelopeIdOf`). */
export function verifyEnvelopeParts (input: unknown, opts: VerifyOptions = {}): VerifiedParts {
  const v = verifyEnvelopeInPlace(input, opts)
  const encoded = Buffer.from(v.pae)
  return {
    payloadType: v.payloadType,
    payload: encoded.subarray(v.payloadOffset),
    keyId: v.keyId,
    publicKey: v.publicKey,
    envelope: v.envelope,
    signatureIndex: v.signatureIndex,
    signatureBytes: v.signatureBytes,
    pae: encoded
  }
}

/** The content id from already decoded parts (see `envelopeId`); `encoded` is `pae(payloadType, payload)` when already built. */
export function envelopeIdOf (payloadType: string, payload: Uint8Array, signature: Uint8Array, encoded?: Uint8Array): string {
  const message = encoded ?? pae(payloadType, payload)
  const tail = ` 1 ${signature.byteLength} `
  const size = message.byteLength + tail.length + signature.byteLength
  if (size > ID_SCRATCH.byteLength) return createHash('sha256').update(message).update(tail).update(signature).digest('hex')
  // One-shot hash over the bytes laid out in a reused buffer: no Hash object per message.
  ID_SCRATCH.set(message, 0)
  ID_SCRATCH.write(tail, message.byteLength, 'latin1')
  ID_SCRATCH.set(signature, message.byteLength + tail.length)
  return hash('sha256', ID_SCRATCH.subarray(0, size), 'hex')
}

/**
 * `envelopeId` of an envelope that already passed `checkEnvelope`, credited to the decoded
 * `signature`: only the payload is decoded again.
 */
export function checkedEnvelopeId (payloadType: string, payloadBase64: string, signature: Uint8Array): string {
  return envelopeIdOf(payloadType, decodeBase64('envelope.payload', payloadBase64), signature)
}

/**
 * Content id of a message, for dedup in stores and feeds: lowercase hex SHA-256 of
 * `PAE(payloadType, payload) SP 1 SP LEN(sig) SP sig`, where `sig` is the decoded signature
 * the message is credited to (the one that verified; `signatureIndex`, by default the first,
 * for a writer's own single-signature envelope). Other signatures, keyid hints and
 * extensions are left out: junk or extra signatures and rewritten hints mint no new id.
 */
export function envelopeId (env: Envelope, signatureIndex = 0): string {
  const checked = checkEnvelope(env, Number.MAX_SAFE_INTEGER)
  const s = checked.signatures[signatureIndex]
  if (s === undefined) throw new ValidationError('envelope.signatures', `no signature ${signatureIndex}`)
  return envelopeIdOf(
    checked.payloadType,
    decodeBase64('envelope.payload', checked.payload),
    decodeBase64(`envelope.signatures[${signatureIndex}].sig`, s.sig)
  )
}

export type { Identity }
