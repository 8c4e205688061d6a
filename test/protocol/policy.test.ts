import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { PolicyError } from '../../src/protocol/errors.js'
import { parsePolicy, policyKeys } from '../../src/protocol/policy.js'
import { ALG_COSIGNATURE_V1, cosignatureLine, cosignersOf, formatCheckpoint, formatNote, formatVerifierKey, parseNote, signatureLine, witnessName } from '../../src/protocol/tlog/index.js'
import { fixedIdentity, makePolicy } from './fixtures.js'

const good = makePolicy(3, { threshold: 2, minOperators: 2 }).json

function policyErrorOf (json: unknown): PolicyError {
  try {
    parsePolicy(json)
  } catch (err) {
    if (err instanceof PolicyError) return err
    throw err
  }
  throw new Error('parsed')
}

const edit = (f: (p: any) => void): unknown => { // eslint-disable-line @typescript-eslint/no-explicit-any -- raw JSON edits
  const p = structuredClone(good)
  f(p)
  return p
}

describe('parsePolicy', () => {
  it('derives key ids and key maps', () => {
    const { policy, builders, announcer } = makePolicy(3, { threshold: 2, minOperators: 2 })
    expect(policy.builders.map(b => b.keyId)).toEqual(builders.map(b => b.keyId))
    expect(policy.builderKeys.size).toBe(3)
    expect(policy.announcerKeys.has(announcer.keyId)).toBe(true)
    expect(policy.builderById.get(builders[1]?.keyId as string)?.name).toBe('b1')
    const all = policyKeys(policy)
    expect(all.size).toBe(4)
  })

  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString()
  const cases: Array<[string, unknown, string]> = [
    ['not an object', 5, '(root)'],
    ['wrong version', edit(p => { p.version = 2 }), 'version'],
    ['missing builders', edit(p => { delete p.builders }), 'builders'],
    ['empty builders', edit(p => { p.builders = [] }), 'builders'],
    ['builder without name', edit(p => { delete p.builders[0].name }), 'builders[0].name'],
    ['builder without operator', edit(p => { delete p.builders[1].operator }), 'builders[1].operator'],
    ['builder unknown field', edit(p => { p.builders[0].url = 'x' }), 'builders[0].url'],
    ['builder key not PEM', edit(p => { p.builders[2].publicKey = 'hello' }), 'builders[2].publicKey'],
    ['builder key not Ed25519', edit(p => { p.builders[2].publicKey = ec }), 'builders[2].publicKey'],
    ['duplicate builder key', edit(p => { p.builders[1].publicKey = p.builders[0].publicKey }), 'builders[1].publicKey'],
    ['duplicate builder name', edit(p => { p.builders[1].name = 'b0' }), 'builders[1].name'],
    ['announcer key garbled', edit(p => { p.announcers[0].publicKey = 'x' }), 'announcers[0].publicKey'],
    ['duplicate announcer key', edit(p => { p.announcers.push({ name: 'other', publicKey: p.announcers[0].publicKey }) }), 'announcers[1].publicKey'],
    ['threshold zero', edit(p => { p.threshold = 0 }), 'threshold'],
    ['threshold not integer', edit(p => { p.threshold = 1.5 }), 'threshold'],
    ['threshold above builders', edit(p => { p.threshold = 4 }), 'threshold'],
    ['minOperators zero', edit(p => { p.minOperators = 0 }), 'minOperators'],
    ['minOperators above distinct operators', edit(p => { p.minOperators = 3; for (const b of p.builders) b.operator = 'same' }), 'minOperators'],
    ['negative allowedDissent', edit(p => { p.allowedDissent = -1 }), 'allowedDissent'],
    ['missing allowedDissent', edit(p => { delete p.allowedDissent }), 'allowedDissent'],
    ['unknown top-level field', edit(p => { p.quorum = 3 }), 'quorum']
  ]
  for (const [name, json, field] of cases) {
    it(`rejects ${name}, naming ${field}`, () => {
      const err = policyErrorOf(json)
      expect(err.field).toBe(field)
      expect(err.message).toContain(field)
    })
  }

  it('takes buildsPerTarget (r for shared work), at least the threshold', () => {
    expect(parsePolicy(good).buildsPerTarget).toBeUndefined()
    expect(parsePolicy(edit(p => { p.buildsPerTarget = 3 })).buildsPerTarget).toBe(3)
    expect(policyErrorOf(edit(p => { p.buildsPerTarget = 1 })).message).toMatch(/buildsPerTarget: 1 is less than the threshold 2/)
    expect(policyErrorOf(edit(p => { p.buildsPerTarget = 'all' })).message).toMatch(/buildsPerTarget/)
  })

  it('says what is wrong with a key', () => {
    expect(policyErrorOf(edit(p => { p.builders[2].publicKey = ec })).message).toBe('policy builders[2].publicKey: expected an Ed25519 key, got ec')
    expect(policyErrorOf(edit(p => { p.builders[1].publicKey = 'ssh-ed25519 AAAA' })).message).toMatch(/^policy builders\[1\]\.publicKey: not an SPKI PEM public key/)
    // An Ed25519 point of small order (the neutral point) parses as a key but verifies nothing.
    const neutral = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from([1]), Buffer.alloc(31)])
    const pem = `-----BEGIN PUBLIC KEY-----\n${neutral.toString('base64')}\n-----END PUBLIC KEY-----\n`
    expect(policyErrorOf(edit(p => { p.announcers[0].publicKey = pem })).message).toMatch(/^policy announcers\[0\]\.publicKey: not a usable Ed25519 point \(small order/)
  })

  it('accepts a policy without announcers and the same key as builder and announcer', () => {
    const b = fixedIdentity(1)
    const p = parsePolicy({ version: 1, builders: [{ name: 'a', operator: 'o', publicKey: b.publicKeyPem }], announcers: [{ name: 'a', publicKey: b.publicKeyPem }], threshold: 1, minOperators: 1, allowedDissent: 0 })
    expect(policyKeys(p).size).toBe(1)
    expect(parsePolicy({ version: 1, builders: [{ name: 'a', operator: 'o', publicKey: b.publicKeyPem }], threshold: 1, minOperators: 1, allowedDissent: 0 }).announcers).toEqual([])
  })
})

describe('policy witnesses named by a C2SP verifier key', () => {
  const w = fixedIdentity(7)
  const vkey = formatVerifierKey('witness.example/w1', w.publicKey, ALG_COSIGNATURE_V1)

  it('takes a tlog-witness by its cosignature/v1 key, whose cosignatures then count under its own name', () => {
    const policy = parsePolicy(edit(p => { p.witnesses = { threshold: 1, keys: [{ name: 'public witness', vkey }] } }))
    const text = formatCheckpoint({ origin: 'example.org/log', size: 1, rootHash: Buffer.alloc(32, 1) })
    const logKey = generateKeyPairSync('ed25519')
    const note = parseNote(formatNote(text, [signatureLine(text, 'example.org/log', logKey.privateKey), cosignatureLine(text, 'witness.example/w1', w.privateKey, 1767225600)]))
    const keys = policy.witnesses?.keys ?? new Map()
    expect([...keys.values()]).toEqual([expect.objectContaining({ name: 'public witness', cosigner: 'witness.example/w1' })])
    expect(cosignersOf(note, keys)).toEqual([w.keyId])
    // The same key under a node witness's name is another cosigner: it does not count.
    const asNode = parseNote(formatNote(text, [cosignatureLine(text, witnessName(w.keyId), w.privateKey, 1767225600)]))
    expect(cosignersOf(asNode, keys)).toEqual([])
  })

  it('names a bad witness key', () => {
    expect(policyErrorOf(edit(p => { p.witnesses = { threshold: 1, keys: [{ name: 'x', vkey: formatVerifierKey('witness.example/w1', w.publicKey) }] } })).message).toMatch(/witnesses\.keys\[0\]\.vkey: not a cosignature\/v1 verifier key/)
    expect(policyErrorOf(edit(p => { p.witnesses = { threshold: 1, keys: [{ name: 'x', vkey: 'nope' }] } })).message).toMatch(/witnesses\.keys\[0\]\.vkey/)
    expect(() => parsePolicy(edit(p => { p.witnesses = { threshold: 1, keys: [{ name: 'x', vkey, publicKey: w.publicKeyPem }] } }))).toThrow(PolicyError)
  })
})
