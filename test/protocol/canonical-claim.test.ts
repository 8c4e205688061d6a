import { describe, expect, it } from 'vitest'
import { canonicalSuccessClaim, claimToStatement, statementToClaim } from '../../src/protocol/claim.js'
import { decodeMessage, encodeStatement, signClaim } from '../../src/protocol/messages.js'
import { signEnvelope } from '../../src/protocol/dsse.js'
import { PAYLOAD_TYPE, SLSA_PROVENANCE_V1, STATEMENT_TYPE, type Claim } from '../../src/protocol/types.js'
import { digestOf, fixedIdentity, successClaim, target } from './fixtures.js'

const builder = fixedIdentity(3)
const keys = new Map([[builder.keyId, builder.publicKey]])

const textOf = (c: Claim): string => Buffer.from(encodeStatement(claimToStatement(c))).toString('utf8')

/** The general path: JSON.parse, the Statement checks and statementToClaim; undefined where it throws. */
function general (text: string): Claim | undefined {
  try {
    const s = JSON.parse(text) as { _type: unknown, predicateType: string }
    if (s._type !== STATEMENT_TYPE || s.predicateType !== SLSA_PROVENANCE_V1) return undefined
    return statementToClaim(s)
  } catch {
    return undefined
  }
}

function variants (): Claim[] {
  const base = successClaim(digestOf('2'))
  const noTag = successClaim(digestOf('2'), target({ tag: undefined }))
  delete noTag.target.tag
  const noApi = successClaim(digestOf('2'))
  delete noApi.environment.engine.apiVersion
  const noSteps = successClaim(digestOf('2'))
  delete noSteps.result?.layerSteps
  const noLayers = successClaim(digestOf('2'))
  if (noLayers.result !== undefined) { noLayers.result.diffIds = []; delete noLayers.result.layerSteps }
  const many = successClaim(digestOf('2'))
  if (many.result !== undefined) {
    many.result.diffIds = Array.from({ length: 40 }, (_, i) => digestOf(i))
    many.result.layerSteps = Array.from({ length: 40 }, (_, i) => i === 7 ? '' : `RUN step ${i} — ünïcode`)
  }
  const emulated = successClaim(digestOf('2'))
  emulated.environment.emulated = true
  emulated.environment.kernel = '6.1.0 (Debian) ☃'
  emulated.startedOn = '2026-01-01T00:00:00.5+01:00'
  emulated.finishedOn = '2026-01-01T00:00:00Z'
  const escaped = successClaim(digestOf('2'))
  if (escaped.result?.layerSteps !== undefined) escaped.result.layerSteps[0] = 'RUN echo "quoted" \\ back\tslash'
  return [base, noTag, noApi, noSteps, noLayers, many, emulated, escaped]
}

describe('canonical success claims', () => {
  it('reads every shape signClaim writes to the same Claim as the general path', () => {
    for (const c of variants()) {
      const text = textOf(c)
      const slow = general(text)
      expect(slow).toBeDefined()
      const fast = canonicalSuccessClaim(text)
      // A string with an escape is left to the general path.
      if (text.includes('\\')) expect(fast).toBeUndefined()
      else expect(fast).toStrictEqual(slow)
      const m = decodeMessage(JSON.stringify(signClaim(c, builder)), { keys })
      expect(m.kind === 'claim' ? m.claim : undefined).toStrictEqual(slow)
    }
  })

  it('never accepts what the general path rejects, nor reads it differently', () => {
    // Deterministic single-character mutations of canonical texts.
    let seed = 12345
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    const alphabet = ['"', '\\', ' ', ',', '0', '9', 'a', 'f', 'g', 'A', 'Z', 'T', ':', '-', '/', '#', '@', '\u0001', 'é', '{', '}', '[', ']']
    let accepted = 0
    for (const c of variants()) {
      const text = textOf(c)
      for (let k = 0; k < 1500; k++) {
        const at = rand(text.length)
        const op = rand(3)
        const ch = alphabet[rand(alphabet.length)] as string
        const mutated = op === 0
          ? text.slice(0, at) + ch + text.slice(at + 1)
          : op === 1 ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + text.slice(at + 1)
        const fast = canonicalSuccessClaim(mutated)
        if (fast !== undefined) {
          accepted++
          expect(fast).toStrictEqual(general(mutated))
        }
      }
    }
    expect(accepted).toBeGreaterThan(0)
  })

  it('rejects through the general path with its usual errors', () => {
    const c = successClaim(digestOf('2'))
    c.finishedOn = '2025-12-31T23:59:59Z'
    const text = textOf(c)
    expect(canonicalSuccessClaim(text)).toBeUndefined()
    const env = signEnvelope(PAYLOAD_TYPE, Buffer.from(text), builder)
    expect(() => decodeMessage(env, { keys })).toThrow(/predicate\.runDetails\.metadata\.finishedOn: is before startedOn/)
    const bad = textOf(successClaim(digestOf('2'))).replace('"2026-01-01T00:00:00Z"', '"2026-02-30T00:00:00Z"')
    expect(canonicalSuccessClaim(bad)).toBeUndefined()
    expect(() => decodeMessage(signEnvelope(PAYLOAD_TYPE, Buffer.from(bad), builder), { keys })).toThrow(/startedOn: not a valid date-time/)
  })
})
