import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  ALG_COSIGNATURE_V1, MemoryTree, cosignatureLine, cosignedMessage, encodeEntryBundle, formatCheckpoint, formatEntry, formatVerifierKey,
  keyHash, leafHash, logOrigin, signNote, witnessName
} from '../../src/protocol/tlog/index.js'
import { rawPublicKey } from '../../src/protocol/ed25519.js'
import { fixedIdentity } from '../protocol/fixtures.js'

// docs/transparency.md promises byte-exact examples: regenerate them and compare.
const doc = readFileSync(new URL('../../docs/transparency.md', import.meta.url), 'utf8')

function block (marker: string): string {
  const at = doc.indexOf(`<!-- example:${marker} -->`)
  expect(at, marker).toBeGreaterThan(0)
  const m = /```(?:text|json)\n([\s\S]*?)\n```/.exec(doc.slice(at))
  return m?.[1] as string
}

describe('docs/transparency.md worked example', () => {
  const log = fixedIdentity(1)
  const witness = fixedIdentity(2)
  const entries = [formatEntry('announcement', '1'.repeat(64)), formatEntry('claim', '2'.repeat(64)), formatEntry('claim', '3'.repeat(64))]
  const tree = new MemoryTree()
  for (const e of entries) tree.append(leafHash(e))
  const origin = logOrigin(log.keyId)
  const text = formatCheckpoint({ origin, size: 3, rootHash: tree.root() })
  const ts = 1767225600

  it('names both keys', () => {
    expect(doc).toContain(log.keyId)
    expect(doc).toContain(witness.keyId)
  })

  it('entries, tile and bundle are what the log makes', () => {
    expect(block('entries') + '\n').toBe(entries.map(e => e.toString('ascii')).join(''))
    expect(block('tile').replace(/\n/g, '')).toBe(tree.tile(0, 0, 3)?.toString('hex'))
    expect(doc).toContain(`the third: ${encodeEntryBundle(entries).byteLength} bytes`)
    expect(doc).toContain(`entries (${entries.map(e => e.byteLength).join(', ').replace(/, (\d+)$/, ' and $1')} bytes)`)
  })

  it('the checkpoint, its signature and the verifier key are byte-exact', () => {
    expect(block('checkpoint') + '\n').toBe(signNote(text, origin, log.privateKey))
    expect(block('vkey')).toBe(formatVerifierKey(origin, log.publicKey))
    const hash = keyHash(origin, 1, rawPublicKey(log.publicKey) as Buffer).toString(16).padStart(8, '0')
    expect(doc).toContain(`first 4 bytes, \`${hash}\``)
  })

  it('the proofs are what the tree gives', () => {
    expect(JSON.parse(block('inclusion'))).toEqual(tree.inclusionProof(1, 3).map(h => Buffer.from(h).toString('base64')))
    expect(doc).toContain(`size 2 (root \`${Buffer.from(tree.root(2)).toString('base64')}\`)`)
    expect(tree.consistencyProof(2, 3).map(h => Buffer.from(h)).at(0)).toEqual(leafHash(entries[2] as Buffer))
  })

  it('the cosignature is byte-exact', () => {
    expect(block('cosigned-message') + '\n').toBe(cosignedMessage(text, ts).toString('utf8'))
    const line = cosignatureLine(text, witnessName(witness.keyId), witness.privateKey, ts)
    expect(block('cosignature')).toBe(line)
    const hash = keyHash(witnessName(witness.keyId), ALG_COSIGNATURE_V1, rawPublicKey(witness.publicKey) as Buffer).toString(16).padStart(8, '0')
    expect(doc).toContain(`key hash \`${hash}\`, then\n\`${ts.toString(16).padStart(16, '0')}\``)
  })
})
