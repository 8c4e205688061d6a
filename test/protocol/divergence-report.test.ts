import { describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/protocol/keys.js'
import { causeRef } from '../../src/protocol/causes.js'
import { signStatement } from '../../src/protocol/messages.js'
import { buildDivergenceStatement, DIVERGENCE_PREDICATE, fitReport, REPORT_ENVELOPE_BYTES, signDivergenceReport, verifyDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'

const d = (c: string): string => `sha256:${c.repeat(64)}`
const report: DivergenceReport = {
  target: { repository: 'https://example.invalid/app', commit: 'c'.repeat(40), variant: 'default', platform: 'linux/amd64', tag: 'v1' },
  a: { claimId: 'claim-a', keyId: 'key-a', manifestDigest: d('a') },
  b: { claimId: 'claim-b', keyId: 'key-b', manifestDigest: d('b') },
  paths: { total: 3, explained: 2 },
  causes: [{ ...causeRef('machine-id'), count: 2, layers: [1], steps: ['RUN apt-get install dbus'], paths: ['etc/machine-id'] }, { ...causeRef('unknown'), count: 1, layers: [1], steps: [], paths: ['opt/x'] }],
  layers: [{ index: 1, step: 'RUN apt-get install dbus', causeCounts: { 'machine-id': 2, unknown: 1 } }],
  fetched: { entries: 40, bytes: 4000 },
  createdAt: '2026-01-01T00:00:00Z'
}

describe('divergence reports', () => {
  it('verify with the signer\'s key or the embedded one, and name both claims\' images as subjects', () => {
    const id = generateIdentity()
    const env = signDivergenceReport(report, id)
    expect(verifyDivergenceReport(env, { keys: new Map([[id.keyId, id.publicKey]]) })).toEqual({ report, keyId: id.keyId })
    expect(verifyDivergenceReport(JSON.stringify(env), { allowEmbeddedKeys: true }).keyId).toBe(id.keyId)
    expect(buildDivergenceStatement(report).subject.map(s => s.digest?.sha256)).toEqual(['a'.repeat(64), 'b'.repeat(64)])
    expect(buildDivergenceStatement(report).predicateType).toBe(DIVERGENCE_PREDICATE)
  })

  it('refuses a changed payload, another signer, an unknown cause and subjects that miss a claim', () => {
    const id = generateIdentity()
    const env = signDivergenceReport(report, id)
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicate: DivergenceReport }
    payload.predicate.causes[0]!.count = 0
    expect(() => verifyDivergenceReport({ ...env, payload: Buffer.from(JSON.stringify(payload)).toString('base64') }, { allowEmbeddedKeys: true })).toThrow()
    const other = generateIdentity()
    expect(() => verifyDivergenceReport(env, { keys: new Map([[other.keyId, other.publicKey]]) })).toThrow()
    const bad = buildDivergenceStatement({ ...report, causes: [{ ...report.causes[0]!, id: 'cosmic-rays' as 'unknown' }] })
    expect(() => verifyDivergenceReport(signStatement(bad, id), { allowEmbeddedKeys: true })).toThrow(/predicate.causes\[0\]/)
    const oneSided = { ...buildDivergenceStatement(report), subject: buildDivergenceStatement(report).subject.slice(0, 1) }
    expect(() => verifyDivergenceReport(signStatement(oneSided, id), { allowEmbeddedKeys: true })).toThrow(/subject/)
  })

  it('fitReport trims steps, paths and layers of a large report to fit one envelope, keeping every count', () => {
    const id = generateIdentity()
    const step = `RUN ${'x'.repeat(1000)}`
    const big: DivergenceReport = {
      ...report,
      causes: Array.from({ length: 20 }, () => ({ ...causeRef('unknown'), count: 7, layers: Array.from({ length: 200 }, (_, i) => i), steps: Array.from({ length: 8 }, () => step), paths: Array.from({ length: 5 }, (_, i) => `opt/${'p'.repeat(900)}${i}`), evidence: Array.from({ length: 5 }, () => 'e'.repeat(500)) })),
      layers: Array.from({ length: 200 }, (_, i) => ({ index: i, step, causeCounts: { unknown: 1 } }))
    }
    const fitted = fitReport(big)
    const size = JSON.stringify(signDivergenceReport(fitted, id)).length
    expect(size).toBeLessThanOrEqual(REPORT_ENVELOPE_BYTES)
    expect(fitted.causes.every(c => c.count === 7)).toBe(true)
    expect(fitted.paths).toEqual(big.paths)
    expect(verifyDivergenceReport(signDivergenceReport(fitted, id), { allowEmbeddedKeys: true }).report).toEqual(fitted)
    expect(fitReport(report)).toBe(report)
  })

  it('refuses fields past their bounds', () => {
    const id = generateIdentity()
    const sign = (r: DivergenceReport): ReturnType<typeof signDivergenceReport> => signStatement(buildDivergenceStatement(r), id)
    expect(() => verifyDivergenceReport(sign({ ...report, causes: [{ ...report.causes[0]!, evidence: ['x'.repeat(600)] }] }), { allowEmbeddedKeys: true })).toThrow(/causes\[0\].evidence/)
    expect(() => verifyDivergenceReport(sign({ ...report, causes: [{ ...report.causes[0]!, paths: [1 as unknown as string] }] }), { allowEmbeddedKeys: true })).toThrow(/causes\[0\].paths/)
    expect(() => verifyDivergenceReport(sign({ ...report, layers: [{ index: 1, causeCounts: { 'cosmic-rays': 1 } }] }), { allowEmbeddedKeys: true })).toThrow(/layers\[0\]/)
    // Names every object has are not catalogue causes.
    expect(() => verifyDivergenceReport(sign({ ...report, causes: [{ ...report.causes[0]!, id: 'toString' as never }] }), { allowEmbeddedKeys: true })).toThrow(/causes\[0\]/)
    expect(() => verifyDivergenceReport(sign({ ...report, layers: [{ index: 1, causeCounts: { constructor: 1 } }] }), { allowEmbeddedKeys: true })).toThrow(/layers\[0\]/)
    expect(() => verifyDivergenceReport(sign({ ...report, createdAt: 'yesterday' }), { allowEmbeddedKeys: true })).toThrow(/createdAt/)
  })
})
