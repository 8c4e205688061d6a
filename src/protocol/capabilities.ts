import { ajv, check } from './ajv.js'
import { SignatureError, ValidationError } from './errors.js'
import { envelopeIdOf, signEnvelope, verifyEnvelopeParts, type Envelope, type VerifyOptions } from './dsse.js'
import type { SigningIdentity } from './keys.js'
import { LIMITS } from './limits.js'
import * as S from './schema-parts.js'
import { PAYLOAD_TYPE, STATEMENT_TYPE } from './types.js'

/** Predicate type of a node's signed statement of what it can build. */
export const CAPABILITIES_PREDICATE = 'https://neko-rebuilder.github.io/capabilities/v1'

/** Platforms one statement may list. */
const MAX_CAPABILITY_PLATFORMS = 32

/** What a node can rebuild, as it says itself (signed, so peers know who says it). */
export interface Capabilities {
  /** Host architecture in OCI terms (`amd64`, `arm64`). */
  arch: string
  /** Platforms it builds; `emulated` ones run under binfmt (slower, still valid). */
  platforms: Array<{ platform: string, emulated: boolean }>
  /** An NVIDIA GPU is available to containers (nvidia runtime or CDI devices); building nvidia variants needs none. */
  nvidia: boolean
  /** False for an observer node that stores and relays but builds nothing. */
  builds: boolean
  engine?: { name: 'docker', version: string, apiVersion?: string }
  buildx?: string
  buildkit?: string
  tool: { name: string, version: string }
  /** RFC 3339; peers keep the newest statement per key. */
  issuedAt: string
}

export interface DecodedCapabilities {
  capabilities: Capabilities
  /** Key id of the verified signer (the node's key). */
  keyId: string
  envelope: Envelope
  id: string
}

const short = { type: 'string', minLength: 1, maxLength: LIMITS.shortStringLength } as const

const statementSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['_type', 'subject', 'predicateType', 'predicate'],
  properties: {
    _type: { const: STATEMENT_TYPE },
    subject: S.single({ type: 'string', maxLength: LIMITS.shortStringLength }, S.sha256Digest),
    predicateType: { const: CAPABILITIES_PREDICATE },
    predicate: {
      type: 'object',
      additionalProperties: false,
      required: ['arch', 'platforms', 'nvidia', 'builds', 'tool', 'issuedAt'],
      properties: {
        arch: short,
        platforms: {
          type: 'array',
          maxItems: MAX_CAPABILITY_PLATFORMS,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['platform', 'emulated'],
            properties: {
              platform: { type: 'string', minLength: 1, maxLength: LIMITS.platformLength },
              emulated: { type: 'boolean' }
            }
          }
        },
        nvidia: { type: 'boolean' },
        builds: { type: 'boolean' },
        engine: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'version'],
          properties: { name: { const: 'docker' }, version: short, apiVersion: short }
        },
        buildx: short,
        buildkit: short,
        tool: {
          type: 'object',
          additionalProperties: false,
          required: ['name', 'version'],
          properties: { name: short, version: short }
        },
        issuedAt: { type: 'string', format: 'date-time', maxLength: 64 }
      }
    }
  }
} as const

interface CapabilitiesStatement {
  _type: string
  subject: Array<{ name: string, digest: { sha256: string } }>
  predicateType: string
  predicate: Capabilities
}

const validateStatement = ajv.compile<CapabilitiesStatement>(statementSchema)

function statementOf (caps: Capabilities, keyId: string): CapabilitiesStatement {
  return {
    _type: STATEMENT_TYPE,
    // The subject is the node key itself: the key id is the SHA-256 of its SPKI DER.
    subject: [{ name: `key:${keyId}`, digest: { sha256: keyId } }],
    predicateType: CAPABILITIES_PREDICATE,
    predicate: caps
  }
}

/** Signs a capabilities statement with the node's key. */
export function signCapabilities (caps: Capabilities, identity: SigningIdentity): Envelope {
  const statement = check(validateStatement, statementOf(caps, identity.keyId), 'statement')
  return signEnvelope(PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(statement)), identity)
}

/**
 * Verifies and decodes a capabilities envelope (JSON text, bytes or object). Any node may
 * publish one, so the embedded key is accepted by default; the subject must name the signer.
 */
export function decodeCapabilities (input: unknown, opts: VerifyOptions = {}): DecodedCapabilities {
  const parts = verifyEnvelopeParts(input, { allowEmbeddedKeys: true, ...opts })
  if (parts.payloadType !== PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${PAYLOAD_TYPE}`)
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(parts.payload))
  } catch (err) {
    throw new ValidationError('statement', `not UTF-8 JSON (${(err as Error).message})`)
  }
  const statement = check(validateStatement, json, 'statement')
  if (statement.subject[0]?.digest.sha256 !== parts.keyId) {
    throw new SignatureError('statement.subject: names a key other than the signer')
  }
  return {
    capabilities: statement.predicate,
    keyId: parts.keyId,
    envelope: parts.envelope,
    id: envelopeIdOf(parts.payloadType, parts.payload, parts.signatureBytes[parts.signatureIndex] as Uint8Array, parts.pae)
  }
}
