/* eslint-disable @typescript-eslint/no-explicit-any -- tests edit raw statement JSON at arbitrary paths */
import { describe, expect, it } from 'vitest'
import { envelopeId, signEnvelope, type Envelope } from '../../src/protocol/dsse.js'
import { LimitError, SignatureError, ValidationError } from '../../src/protocol/errors.js'
import { LIMITS } from '../../src/protocol/limits.js'
import { announcementTargets, claimToStatement, decodeMessage, decodeMessages, MAX_DECODE_BATCH, parseTargetKey, signAnnouncement, signClaim, targetKey, type Statement } from '../../src/protocol/messages.js'
import { ANNOUNCEMENT_PREDICATE, FAILURE_PREDICATE, PAYLOAD_TYPE, REBUILD_BUILD_TYPE, SLSA_PROVENANCE_V1, type Claim } from '../../src/protocol/types.js'
import { announcement, COMMIT, digestOf, failureClaim, fixedIdentity, REPO, successClaim, target } from './fixtures.js'

const builder = fixedIdentity(1)
const keys = new Map([[builder.keyId, builder.publicKey]])

function thrown (fn: () => unknown): Error {
  try {
    fn()
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a throw')
}

function statementOf (env: Envelope): Statement {
  return JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Statement
}

/** Re-sign an edited statement so that only field validation can reject it. */
function resigned (env: Envelope, edit: (s: Record<string, any>) => void): Envelope {
  const s = statementOf(env) as unknown as Record<string, any>
  edit(s)
  return signEnvelope(PAYLOAD_TYPE, new TextEncoder().encode(JSON.stringify(s)), builder)
}

function fieldError (env: Envelope): ValidationError | LimitError {
  try {
    decodeMessage(env, { keys })
  } catch (err) {
    if (err instanceof ValidationError || err instanceof LimitError) return err
    throw err
  }
  throw new Error('decoded')
}

describe('claims', () => {
  it('round-trips a success claim as SLSA provenance v1', () => {
    const claim = successClaim(digestOf('2'))
    const env = signClaim(claim, builder)
    const s = statementOf(env)
    expect(s._type).toBe('https://in-toto.io/Statement/v1')
    expect(s.predicateType).toBe(SLSA_PROVENANCE_V1)
    expect(s.subject).toEqual([{ name: `${REPO}#base@linux/amd64`, digest: { sha256: '2'.repeat(64) } }])
    const p = s.predicate as Record<string, any>
    expect(p.buildDefinition.buildType).toBe(REBUILD_BUILD_TYPE)
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: `git+${REPO}@refs/tags/v3.0.0`, digest: { gitCommit: COMMIT } }])
    expect(p.runDetails.builder.version['engine.version']).toBe('26.1.5')
    expect(p.runDetails.byproducts.map((b: { name: string }) => b.name)).toEqual(['oci-index', 'oci-config'])
    expect(p.runDetails.byproducts[1].annotations.diffIds).toHaveLength(2)
    expect(p.runDetails.byproducts[1].annotations.createdBy[1]).toBe('RUN /bin/busybox --install -s /bin')
    const d = decodeMessage(env, { keys })
    expect(d.kind).toBe('claim')
    expect(d.keyId).toBe(builder.keyId)
    expect(d.kind === 'claim' ? d.claim : undefined).toEqual(claim)
  })

  it('round-trips a claim without tag or layer steps (commit as the dependency)', () => {
    const { tag: _t, ...t } = target()
    const claim = successClaim(digestOf('2'), t)
    delete claim.result?.layerSteps
    const env = signClaim(claim, builder)
    expect((statementOf(env).predicate as any).buildDefinition.resolvedDependencies[0].uri).toBe(`git+${REPO}@${COMMIT}`)
    const d = decodeMessage(env, { keys })
    expect(d.kind === 'claim' ? d.claim : undefined).toEqual(claim)
  })

  it('an app claim names the bases it was built on after the source; a claim without them reads as before', () => {
    const claim: Claim = { ...successClaim(digestOf('2'), target({ variant: 'firefox' })), bases: [{ variant: 'base', manifestDigest: digestOf('7') }] }
    const env = signClaim(claim, builder)
    expect((statementOf(env).predicate as any).buildDefinition.resolvedDependencies).toEqual([
      { uri: `git+${REPO}@refs/tags/v3.0.0`, digest: { gitCommit: COMMIT } },
      { name: 'base', uri: `${REPO}#base@linux/amd64`, digest: { sha256: '7'.repeat(64) } }
    ])
    const d = decodeMessage(env, { keys })
    expect(d.kind === 'claim' ? d.claim : undefined).toEqual(claim)
    // Old claims (no bases) decode with none.
    const old = decodeMessage(signClaim(successClaim(digestOf('2')), builder), { keys })
    expect(old.kind === 'claim' ? old.claim.bases : 'none').toBeUndefined()

    const bad: Array<[(s: Record<string, any>) => void, string]> = [
      [s => { s.predicate.buildDefinition.resolvedDependencies[1].uri = `${REPO}#other@linux/amd64` }, 'predicate.buildDefinition.resolvedDependencies[1].uri'],
      [s => { s.predicate.buildDefinition.resolvedDependencies[1].digest = { sha256: 'abc' } }, 'predicate.buildDefinition.resolvedDependencies[1].digest.sha256'],
      [s => { s.predicate.buildDefinition.resolvedDependencies.push(s.predicate.buildDefinition.resolvedDependencies[1]) }, 'predicate.buildDefinition.resolvedDependencies'],
      [s => { const deps = s.predicate.buildDefinition.resolvedDependencies; for (let i = 0; i < LIMITS.basesPerClaim; i++) deps.push({ ...deps[1], name: `b${i}`, uri: `${REPO}#b${i}@linux/amd64` }) }, 'predicate.buildDefinition.resolvedDependencies'],
      [s => { s.predicate.buildDefinition.resolvedDependencies[1].extra = 1 }, 'predicate.buildDefinition.resolvedDependencies[1].extra']
    ]
    for (const [edit, field] of bad) expect(fieldError(resigned(env, edit)).field).toBe(field)
    expect(() => signClaim({ ...claim, bases: [{ variant: 'base', manifestDigest: 'sha256:x' }] }, builder)).toThrow(/bases\[0\]\.manifestDigest/)
  })

  it('round-trips a failure claim with the failure predicate', () => {
    const claim = failureClaim({ class: 'timeout', message: 'build exceeded 3600 s', step: 'RUN make', logExcerpt: 'tail\nof log' })
    const env = signClaim(claim, builder)
    const s = statementOf(env)
    expect(s.predicateType).toBe(FAILURE_PREDICATE)
    expect(s.subject).toEqual([{ name: `${REPO}#base@linux/amd64`, digest: { gitCommit: COMMIT } }])
    const d = decodeMessage(env, { keys })
    expect(d.kind === 'claim' ? d.claim : undefined).toEqual(claim)
  })

  it('refuses to sign a claim with both or neither of result and failure', () => {
    // Neither is a Claim to the compiler; both arrive as bytes from a peer.
    const both = { ...successClaim(digestOf('2')), failure: { class: 'timeout', message: 'x' } } as unknown as Claim
    expect(() => signClaim(both, builder)).toThrow(ValidationError)
    const { result: _r, ...neither } = successClaim(digestOf('2'))
    expect(() => claimToStatement(neither as unknown as Claim)).toThrow(/exactly one/)
  })

  it('refuses to sign a malformed claim, naming the field', () => {
    expect(() => signClaim(successClaim('sha256:XYZ'), builder)).toThrow(/result\.manifestDigest/)
    expect(() => signClaim(successClaim(digestOf('2'), target({ commit: 'abc' })), builder)).toThrow(/externalParameters\.commit/)
  })

  const env = signClaim(successClaim(digestOf('2')), builder)
  const cases: Array<[string, (s: Record<string, any>) => void, string]> = [
    ['bad commit', s => { s.predicate.buildDefinition.externalParameters.commit = 'zz' }, 'predicate.buildDefinition.externalParameters.commit'],
    ['bad platform', s => { s.predicate.buildDefinition.externalParameters.platform = 'linux' }, 'predicate.buildDefinition.externalParameters.platform'],
    ['bad time', s => { s.predicate.runDetails.metadata.startedOn = 'yesterday' }, 'predicate.runDetails.metadata.startedOn'],
    ['bad layer digest', s => { s.predicate.runDetails.byproducts[1].annotations.diffIds[0] = 'sha256:abc' }, 'predicate.runDetails.byproducts[1].annotations.diffIds[0]'],
    ['uppercase layer digest', s => { s.predicate.runDetails.byproducts[1].annotations.diffIds[1] = `sha256:${'A'.repeat(64)}` }, 'predicate.runDetails.byproducts[1].annotations.diffIds[1]'],
    ['bad config digest', s => { s.predicate.runDetails.byproducts[1].digest.sha256 = 'abc' }, 'predicate.runDetails.byproducts[1].digest.sha256'],
    ['non-ASCII digit', s => { s.predicate.buildDefinition.externalParameters.commit = `${'a'.repeat(39)}\u0661` }, 'predicate.buildDefinition.externalParameters.commit'],
    ['non-hex last digit', s => { s.predicate.runDetails.byproducts[0].digest.sha256 = `${'a'.repeat(63)}g` }, 'predicate.runDetails.byproducts[0].digest.sha256'],
    ['uppercase commit', s => { s.predicate.buildDefinition.externalParameters.commit = 'A'.repeat(40) }, 'predicate.buildDefinition.externalParameters.commit'],
    ['recipe digest with uppercase hex', s => { s.predicate.buildDefinition.externalParameters.recipe.digest = `sha256:${'F'.repeat(64)}` }, 'predicate.buildDefinition.externalParameters.recipe.digest'],
    ['bad recipe digest', s => { s.predicate.buildDefinition.externalParameters.recipe.digest = 'md5:1' }, 'predicate.buildDefinition.externalParameters.recipe.digest'],
    ['unknown field', s => { s.predicate.runDetails.extra = 1 }, 'predicate.runDetails.extra'],
    ['missing field', s => { delete s.predicate.buildDefinition.internalParameters.sourceDateEpoch }, 'predicate.buildDefinition.internalParameters.sourceDateEpoch'],
    ['negative epoch', s => { s.predicate.buildDefinition.internalParameters.sourceDateEpoch = -1 }, 'predicate.buildDefinition.internalParameters.sourceDateEpoch'],
    ['bad subject digest', s => { s.subject[0].digest.sha256 = '9'.repeat(63) }, 'subject[0].digest.sha256'],
    ['subject name mismatch', s => { s.subject[0].name = 'other#base@linux/amd64' }, 'subject[0].name'],
    ['dependency mismatch', s => { s.predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit = 'f'.repeat(40) }, 'predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit'],
    ['finished before started', s => { s.predicate.runDetails.metadata.finishedOn = '2025-01-01T00:00:00Z' }, 'predicate.runDetails.metadata.finishedOn'],
    ['wrong builder id', s => { s.predicate.runDetails.builder.id = 'someone-else' }, 'predicate.runDetails.builder.id'],
    ['byproducts out of order', s => { s.predicate.runDetails.byproducts.reverse() }, 'predicate.runDetails.byproducts[0].annotations'],
    ['a third byproduct', s => { s.predicate.runDetails.byproducts.push({ name: 'layer/0', digest: { sha256: '4'.repeat(64) } }) }, 'predicate.runDetails.byproducts'],
    ['wrong media type', s => { s.predicate.runDetails.byproducts[0].mediaType = 'application/json' }, 'predicate.runDetails.byproducts[0].mediaType'],
    ['a step for each layer but one', s => { s.predicate.runDetails.byproducts[1].annotations.createdBy.pop() }, 'predicate.runDetails.byproducts[1].annotations.createdBy'],
    ['unknown annotation', s => { s.predicate.runDetails.byproducts[1].annotations.extra = 'x' }, 'predicate.runDetails.byproducts[1].annotations.extra'],
    ['wrong _type', s => { s._type = 'https://in-toto.io/Statement/v0.1' }, '_type'],
    ['unknown predicate', s => { s.predicateType = 'https://example.com/x' }, 'predicateType']
  ]
  for (const [name, edit, field] of cases) {
    it(`rejects a signed statement with ${name}, naming ${field}`, () => {
      const err = fieldError(resigned(env, edit))
      expect(err.field).toBe(field)
    })
  }

  it('quotes the rule a malformed digest breaks', () => {
    const err = fieldError(resigned(env, s => { s.predicate.runDetails.byproducts[0].digest.sha256 = `${'0'.repeat(62)}zz` }))
    expect(err.message).toContain('does not match ^[0-9a-f]{64}$')
    const layer = fieldError(resigned(env, s => { s.predicate.runDetails.byproducts[1].annotations.diffIds[0] = 'sha256:zz' }))
    expect(layer.message).toContain('does not match ^sha256:[0-9a-f]{64}$')
  })

  it('reports limits as LimitError with the path', () => {
    const many = resigned(env, s => {
      const a = s.predicate.runDetails.byproducts[1].annotations
      a.diffIds = Array.from({ length: LIMITS.layersPerImage + 1 }, () => a.diffIds[0])
      delete a.createdBy
    })
    const err = fieldError(many)
    expect(err).toBeInstanceOf(LimitError)
    expect(err.field).toBe('predicate.runDetails.byproducts[1].annotations.diffIds')
    const long = fieldError(resigned(signClaim(failureClaim(), builder), s => { s.predicate.failure.logExcerpt = 'x'.repeat(LIMITS.logExcerptLength + 1) }))
    expect(long).toBeInstanceOf(LimitError)
    expect(long.field).toBe('predicate.failure.logExcerpt')
  })

  it('does not parse the payload of an unverified envelope', () => {
    const bad = signEnvelope(PAYLOAD_TYPE, new TextEncoder().encode('not json'), fixedIdentity(5))
    expect(() => decodeMessage(bad, { keys })).toThrow(SignatureError)
    expect(() => decodeMessage(bad, { keys, allowEmbeddedKeys: true })).toThrow(/envelope\.payload: not UTF-8 JSON/)
  })

  it('refuses a payload with a duplicate key anywhere, escaped or not', () => {
    const text = Buffer.from(env.payload, 'base64').toString()
    const cases: Array<[string, string]> = [
      [text.replace('{"_type":', '{"_type":"x","_type":'), 'envelope.payload'],
      [text.replace('"predicateType":', '"predicateTyp\\u0065":"x","predicateType":'), 'envelope.payload'],
      [text.replace('"startedOn":', '"startedOn":"2020-01-01T00:00:00Z","startedOn":'), 'predicate.runDetails.metadata']
    ]
    for (const [dup, field] of cases) {
      expect(dup).not.toBe(text)
      const err = thrown(() => decodeMessage(signEnvelope(PAYLOAD_TYPE, Buffer.from(dup), builder), { keys })) as ValidationError
      expect([err.name, err.field]).toEqual(['ValidationError', field])
      expect(err.message).toContain('duplicate key')
    }
    // Equal names in different objects, and colons and escapes inside strings, are fine.
    const ok = text.replace('"COPY busybox', '"a:b\\"c: COPY busybox')
    expect(ok).not.toBe(text)
    expect(decodeMessage(signEnvelope(PAYLOAD_TYPE, Buffer.from(ok), builder), { keys }).kind).toBe('claim')
  })

  it('rejects another payloadType', () => {
    const other = signEnvelope('application/json', new TextEncoder().encode('{}'), builder)
    expect(fieldError(other).field).toBe('envelope.payloadType')
  })

  it('gives the same id to the same message relayed with other hints', () => {
    const a = decodeMessage(env, { keys })
    const copy = JSON.parse(JSON.stringify(env)) as Envelope
    ;(copy.signatures[0] as { keyid: string }).keyid = ''
    expect(decodeMessage(copy, { keys }).id).toBe(a.id)
    expect(a.id).toBe(envelopeId(env))
    // A signature that verifies nothing (here: over another payload) mints no new id.
    const other = signClaim(successClaim(digestOf('2')), fixedIdentity(9))
    const both: Envelope = { ...env, signatures: [other.signatures[0], env.signatures[0]] as Envelope['signatures'] }
    expect(decodeMessage(both, { keys }).id).toBe(a.id)
  })

  it('keeps the id of what was verified when the caller later edits the envelope object', () => {
    const copy = JSON.parse(JSON.stringify(env)) as Envelope
    const d = decodeMessage(copy, { keys })
    copy.payload = signClaim(successClaim(digestOf('3')), builder).payload
    expect(d.id).toBe(envelopeId(env))
    expect({ ...d }.id).toBe(envelopeId(env))
    expect(JSON.parse(JSON.stringify(d)).id).toBe(envelopeId(env))
  })
})

describe('decodeMessages', () => {
  it('gives, in order, what decodeMessage gives one by one, errors included', () => {
    const good = signClaim(successClaim(digestOf('2')), builder)
    const failure = signClaim(failureClaim(), builder)
    const forged = { ...good, payload: failure.payload }
    const stranger = signClaim(successClaim(digestOf('4')), fixedIdentity(7))
    const badField = resigned(good, s => { s.predicate.runDetails.byproducts[0].digest.sha256 = 'abc' })
    const inputs: unknown[] = [JSON.stringify(good), forged, 'not json', failure, stranger, badField, good]
    const batch = decodeMessages(inputs, { keys })
    expect(batch).toHaveLength(inputs.length)
    inputs.forEach((input, i) => {
      const r = batch[i]
      let one: { ok: true, claim: unknown, id: string } | { ok: false, error: string }
      try {
        const d = decodeMessage(input, { keys })
        one = { ok: true, claim: d.kind === 'claim' ? d.claim : undefined, id: d.id }
      } catch (err) {
        one = { ok: false, error: `${(err as Error).name}: ${(err as Error).message}` }
      }
      expect(r?.ok ? { ok: true, claim: r.message.kind === 'claim' ? r.message.claim : undefined, id: r.message.id } : { ok: false, error: `${r?.error.name}: ${r?.error.message}` }).toEqual(one)
    })
    expect(batch.map(r => r.ok)).toEqual([true, false, false, true, false, false, true])
  })

  it('checks a batch too large for one pass in parts, and keeps the order', () => {
    // Near the payload limit each: a handful of these fill the batch scratch buffer.
    const big = (i: number): Envelope => {
      const c = successClaim(digestOf(String(i % 10)))
      if (c.result === undefined) throw new Error('no result')
      c.result.diffIds = Array.from({ length: 150 }, (_, l) => digestOf(String((l + i) % 10)))
      c.result.layerSteps = c.result.diffIds.map((_, l) => `RUN step ${l} `.padEnd(1000, 'x'))
      return signClaim(c, builder)
    }
    const envs = Array.from({ length: 9 }, (_, i) => big(i))
    const inputs: unknown[] = envs.map(e => JSON.stringify(e))
    inputs.splice(5, 0, { ...envs[0], payload: envs[1]?.payload })
    const batch = decodeMessages(inputs, { keys })
    expect(batch.map(r => r.ok)).toEqual([true, true, true, true, true, false, true, true, true, true])
    batch.forEach((r, i) => {
      if (r.ok) expect(r.message.id).toBe(decodeMessage(inputs[i], { keys }).id)
    })
  })

  it('refuses more than MAX_DECODE_BATCH inputs at once', () => {
    expect(() => decodeMessages(Array.from({ length: MAX_DECODE_BATCH + 1 }, () => '{}'))).toThrow(LimitError)
  })
})

describe('announcements', () => {
  const announcer = fixedIdentity(200)
  const akeys = new Map([[announcer.keyId, announcer.publicKey]])

  it('round-trips as an in-toto Statement', () => {
    const a = announcement()
    const env = signAnnouncement(a, announcer)
    const s = statementOf(env)
    expect(s.predicateType).toBe(ANNOUNCEMENT_PREDICATE)
    expect(s.subject).toEqual([{ name: `${REPO}@v3.0.0`, digest: { gitCommit: COMMIT } }])
    const d = decodeMessage(env, { keys: akeys })
    expect(d.kind === 'announcement' ? d.announcement : undefined).toEqual(a)
  })

  it('rejects duplicate targets, too many targets and bad tags', () => {
    expect(() => signAnnouncement(announcement({ targets: [{ variant: 'base', platform: 'linux/amd64' }, { variant: 'base', platform: 'linux/amd64' }] }), announcer)).toThrow(/predicate\.targets\[1\]/)
    const many = Array.from({ length: LIMITS.targetsPerAnnouncement + 1 }, (_, i) => ({ variant: `v${i}`, platform: 'linux/amd64' }))
    expect(() => signAnnouncement(announcement({ targets: many }), announcer)).toThrow(LimitError)
    expect(() => signAnnouncement(announcement({ tag: 'bad tag' }), announcer)).toThrow(/predicate\.tag/)
  })
})

describe('targetKey', () => {
  it('is canonical, ignores the tag and parses back', () => {
    const k = targetKey(target())
    expect(k).toBe(`${REPO}@${COMMIT}#base@linux/amd64`)
    expect(targetKey(target({ tag: 'other' }))).toBe(k)
    const { tag: _t, ...rest } = target()
    expect(parseTargetKey(k)).toEqual(rest)
    expect(() => parseTargetKey('nope')).toThrow(ValidationError)
  })
})

describe('announcementTargets', () => {
  it('expands an announcement into one target per entry, keyed as claims are', () => {
    const a = announcement()
    const targets = announcementTargets(a)
    expect(targets).toEqual([
      { repository: REPO, commit: COMMIT, variant: 'base', platform: 'linux/amd64', tag: 'v3.0.0' },
      { repository: REPO, commit: COMMIT, variant: 'base', platform: 'linux/arm64', tag: 'v3.0.0' }
    ])
    expect(targets.map(targetKey)).toEqual([`${REPO}@${COMMIT}#base@linux/amd64`, `${REPO}@${COMMIT}#base@linux/arm64`])
  })
})
