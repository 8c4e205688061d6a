import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { PolicyError } from '../../protocol/errors.js'
import { parsePolicy, type TrustPolicy } from '../../protocol/policy.js'

/**
 * The policy a node runs with until one is configured: no builder and no announcer is trusted,
 * so the node stores and relays only what it can verify, builds nothing announced, and every
 * verdict stays `pending`.
 */
export function trustNobodyPolicy (): TrustPolicy {
  return {
    version: 1,
    builders: [],
    announcers: [],
    threshold: 1,
    minOperators: 1,
    allowedDissent: 0,
    builderKeys: new Map(),
    announcerKeys: new Map(),
    builderById: new Map()
  }
}

/** Reads and parses a trust policy file; errors name the file and the bad field. */
export async function loadPolicyFile (path: string): Promise<TrustPolicy> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new PolicyError('(file)', `cannot read ${path}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new PolicyError('(file)', `${path} is not JSON: ${(err as Error).message}`)
  }
  try {
    return parsePolicy(json)
  } catch (err) {
    if (err instanceof PolicyError) throw new PolicyError(err.field, `${err.message.replace(/^policy [^:]*: /, '')} (in ${path})`)
    throw err
  }
}

/**
 * How a VSA names the policy file it applied (`policy.uri`, `policy.digest.sha256`): its
 * `file:` URI and the SHA-256 of its bytes, so a reader can tell which policy was meant.
 */
export async function policyReference (path: string): Promise<{ uri: string, digest: string }> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    throw new PolicyError('(file)', `cannot read ${path}: ${(err as Error).message}`)
  }
  return { uri: pathToFileURL(resolve(path)).toString(), digest: createHash('sha256').update(bytes).digest('hex') }
}

export interface PolicyKeyEntry {
  name: string
  /** Builders only; defaults to the name. */
  operator?: string
  publicKeyPem: string
}

export interface ComposePolicyInit {
  /** Default: a majority of the builders. */
  threshold?: number
  /** Default: the threshold, capped at the number of distinct operators. */
  minOperators?: number
  allowedDissent?: number
}

/**
 * A trust policy document (the JSON a node reads) from public keys, checked by the same parser
 * a node uses, so a file written here is one every node accepts.
 */
export function composePolicy (builders: PolicyKeyEntry[], announcers: PolicyKeyEntry[], init: ComposePolicyInit = {}): Record<string, unknown> {
  const operators = new Set(builders.map(b => b.operator ?? b.name)).size
  const threshold = init.threshold ?? Math.floor(builders.length / 2) + 1
  const doc = {
    version: 1,
    builders: builders.map(b => ({ name: b.name, operator: b.operator ?? b.name, publicKey: b.publicKeyPem })),
    announcers: announcers.map(a => ({ name: a.name, publicKey: a.publicKeyPem })),
    threshold,
    minOperators: init.minOperators ?? Math.min(threshold, operators),
    allowedDissent: init.allowedDissent ?? 0
  }
  parsePolicy(doc)
  return doc
}
