import type { KeyObject } from 'node:crypto'
import type { ErrorObject } from 'ajv'
import { ajv, jsonPath } from './ajv.js'
import { PolicyError, ValidationError } from './errors.js'
import { keyIdOf, publicKeyFromPem } from './keys.js'
import { LIMITS } from './limits.js'
import { ALG_COSIGNATURE_V1, parseVerifierKey } from './tlog/note.js'

export interface PolicyBuilder {
  name: string
  /** Who runs the builder; quorum counts distinct operators (`minOperators`). */
  operator: string
  publicKey: KeyObject
  publicKeyPem: string
  keyId: string
}

export interface PolicyAnnouncer {
  name: string
  publicKey: KeyObject
  publicKeyPem: string
  keyId: string
}

/** A parsed, validated trust policy. */
export interface TrustPolicy {
  version: 1
  builders: PolicyBuilder[]
  announcers: PolicyAnnouncer[]
  /** k: agreeing trusted builders needed for `reproducible`. */
  threshold: number
  /** Distinct operators among the agreeing builders needed for `reproducible`. */
  minOperators: number
  /** Trusted builders that may report another digest while a digest still counts as reproducible. */
  allowedDissent: number
  /** Independent builds each target gets when nodes share work (docs/node.md); threshold + 1 when absent. */
  buildsPerTarget?: number
  builderKeys: ReadonlyMap<string, KeyObject>
  announcerKeys: ReadonlyMap<string, KeyObject>
  /** Builder by key id. */
  builderById: ReadonlyMap<string, PolicyBuilder>
  /** When present, a claim counts only if it is in a log checkpoint cosigned by `threshold` of these (docs/transparency.md). */
  witnesses?: { threshold: number, keys: ReadonlyMap<string, PolicyWitness> }
}

/**
 * A witness a policy names: a node (its cosigner name follows from its key) or, by a C2SP
 * cosignature/v1 verifier key, any tlog-witness (`cosigner` is the name in that key).
 */
export interface PolicyWitness {
  name: string
  publicKey: KeyObject
  cosigner?: string
}

interface PolicyJson {
  version: 1
  builders: Array<{ name: string, operator: string, publicKey: string }>
  announcers?: Array<{ name: string, publicKey: string }>
  threshold: number
  minOperators: number
  allowedDissent: number
  buildsPerTarget?: number
  witnesses?: { threshold: number, keys: Array<{ name: string, publicKey?: string, vkey?: string }> }
}

const name = { type: 'string', minLength: 1, maxLength: LIMITS.shortStringLength }
const pem = { type: 'string', minLength: 1, maxLength: 4096 }

const validate = ajv.compile<PolicyJson>({
  type: 'object',
  properties: {
    version: { type: 'integer', const: 1 },
    builders: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.policyKeys,
      items: {
        type: 'object',
        properties: { name, operator: name, publicKey: pem },
        required: ['name', 'operator', 'publicKey'],
        additionalProperties: false
      }
    },
    announcers: {
      type: 'array',
      maxItems: LIMITS.policyKeys,
      items: {
        type: 'object',
        properties: { name, publicKey: pem },
        required: ['name', 'publicKey'],
        additionalProperties: false
      }
    },
    threshold: { type: 'integer', minimum: 1 },
    minOperators: { type: 'integer', minimum: 1 },
    allowedDissent: { type: 'integer', minimum: 0 },
    buildsPerTarget: { type: 'integer', minimum: 1, maximum: LIMITS.policyKeys },
    witnesses: {
      type: 'object',
      properties: {
        threshold: { type: 'integer', minimum: 1 },
        keys: {
          type: 'array',
          minItems: 1,
          maxItems: LIMITS.policyKeys,
          items: {
            type: 'object',
            properties: { name, publicKey: pem, vkey: { type: 'string', minLength: 1, maxLength: 1024 } },
            required: ['name'],
            additionalProperties: false
          }
        }
      },
      required: ['threshold', 'keys'],
      additionalProperties: false
    }
  },
  required: ['version', 'builders', 'threshold', 'minOperators', 'allowedDissent'],
  additionalProperties: false
})

function policyError (err: ErrorObject): PolicyError {
  const field = jsonPath(err.instancePath)
  const params = err.params as Record<string, unknown>
  const at = (k: string): string => field === '' ? k : `${field}.${k}`
  switch (err.keyword) {
    case 'required': return new PolicyError(at(String(params.missingProperty)), 'missing')
    case 'additionalProperties': return new PolicyError(at(String(params.additionalProperty)), 'unknown field')
    default: return new PolicyError(field === '' ? '(root)' : field, err.message ?? 'invalid')
  }
}

function key (field: string, pemText: string): KeyObject {
  try {
    return publicKeyFromPem(pemText)
  } catch (err) {
    if (err instanceof ValidationError) throw new PolicyError(field, err.reason)
    throw err
  }
}

/**
 * Parse a trust policy (the JSON value, already parsed from text). Every error names the
 * field, e.g. `builders[2].publicKey: not an Ed25519 SPKI PEM`.
 */
export function parsePolicy (json: unknown): TrustPolicy {
  if (!validate(json)) {
    const first = validate.errors?.[0]
    throw first != null ? policyError(first) : new PolicyError('(root)', 'invalid')
  }
  const builders: PolicyBuilder[] = []
  const builderById = new Map<string, PolicyBuilder>()
  const names = new Set<string>()
  json.builders.forEach((b, i) => {
    const publicKey = key(`builders[${i}].publicKey`, b.publicKey)
    const keyId = keyIdOf(publicKey)
    if (builderById.has(keyId)) throw new PolicyError(`builders[${i}].publicKey`, `duplicate key (also builder ${JSON.stringify(builderById.get(keyId)?.name)})`)
    if (names.has(b.name)) throw new PolicyError(`builders[${i}].name`, `duplicate name ${JSON.stringify(b.name)}`)
    names.add(b.name)
    const builder = { name: b.name, operator: b.operator, publicKey, publicKeyPem: b.publicKey, keyId }
    builders.push(builder)
    builderById.set(keyId, builder)
  })
  const announcers: PolicyAnnouncer[] = []
  const announcerKeys = new Map<string, KeyObject>()
  const announcerNames = new Set<string>()
  ;(json.announcers ?? []).forEach((a, i) => {
    const publicKey = key(`announcers[${i}].publicKey`, a.publicKey)
    const keyId = keyIdOf(publicKey)
    if (announcerKeys.has(keyId)) throw new PolicyError(`announcers[${i}].publicKey`, 'duplicate key')
    if (announcerNames.has(a.name)) throw new PolicyError(`announcers[${i}].name`, `duplicate name ${JSON.stringify(a.name)}`)
    announcerNames.add(a.name)
    announcers.push({ name: a.name, publicKey, publicKeyPem: a.publicKey, keyId })
    announcerKeys.set(keyId, publicKey)
  })
  if (json.threshold > builders.length) {
    throw new PolicyError('threshold', `${json.threshold} is more than the ${builders.length} builders`)
  }
  const operators = new Set(builders.map(b => b.operator))
  if (json.minOperators > operators.size) {
    throw new PolicyError('minOperators', `${json.minOperators} is more than the ${operators.size} distinct operators`)
  }
  if (json.buildsPerTarget !== undefined && json.buildsPerTarget < json.threshold) {
    throw new PolicyError('buildsPerTarget', `${json.buildsPerTarget} is less than the threshold ${json.threshold}: no target could settle`)
  }
  let witnesses: TrustPolicy['witnesses']
  if (json.witnesses !== undefined) {
    const keys = new Map<string, PolicyWitness>()
    json.witnesses.keys.forEach((w, i) => {
      let witness: PolicyWitness
      if ((w.vkey === undefined) === (w.publicKey === undefined)) throw new PolicyError(`witnesses.keys[${i}]`, 'give either publicKey (a node witness) or vkey (a C2SP tlog-witness), not both or neither')
      if (w.vkey !== undefined) {
        let v
        try {
          v = parseVerifierKey(w.vkey)
        } catch (err) {
          throw new PolicyError(`witnesses.keys[${i}].vkey`, (err as Error).message)
        }
        if (v.alg !== ALG_COSIGNATURE_V1) throw new PolicyError(`witnesses.keys[${i}].vkey`, 'not a cosignature/v1 verifier key (algorithm 0x04)')
        witness = { name: w.name, publicKey: v.publicKey, cosigner: v.name }
      } else {
        witness = { name: w.name, publicKey: key(`witnesses.keys[${i}].publicKey`, w.publicKey ?? '') }
      }
      if (keys.has(keyIdOf(witness.publicKey))) throw new PolicyError(`witnesses.keys[${i}]`, 'duplicate key')
      keys.set(keyIdOf(witness.publicKey), witness)
    })
    if (json.witnesses.threshold > keys.size) throw new PolicyError('witnesses.threshold', `${json.witnesses.threshold} is more than the ${keys.size} witnesses`)
    witnesses = { threshold: json.witnesses.threshold, keys }
  }
  return {
    ...(witnesses !== undefined ? { witnesses } : {}),
    version: 1,
    builders,
    announcers,
    threshold: json.threshold,
    minOperators: json.minOperators,
    allowedDissent: json.allowedDissent,
    ...(json.buildsPerTarget !== undefined ? { buildsPerTarget: json.buildsPerTarget } : {}),
    builderKeys: new Map(builders.map(b => [b.keyId, b.publicKey])),
    announcerKeys,
    builderById
  }
}

/** Every key of the policy (builders and announcers), for `verifyEnvelope`/`decodeMessage`. */
export function policyKeys (policy: TrustPolicy): ReadonlyMap<string, KeyObject> {
  return new Map([...policy.builderKeys, ...policy.announcerKeys])
}
