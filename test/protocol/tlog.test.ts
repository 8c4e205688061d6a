import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  MemoryTree, ProofError, NoteError, checkCosignature, consistencyRoots, cosignatureLine, decodeEntryBundle, encodeEntryBundle,
  encodeTileIndex, formatCheckpoint, formatEntry, formatVerifierKey, leafHash, nodeHash, openNote, parseCheckpoint, parseEntry, parseNote,
  parseTilePath, parseVerifierKey, signNote, tilePath, tileWidthAt, verifyConsistency, verifyInclusion, verifySplitView, EMPTY_ROOT,
  checkWitnessed, takeInclusionLines
} from '../../src/protocol/tlog/index.js'

/** MTH straight from RFC 6962 2.1, recursion over the leaves. */
function mth (leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT
  if (leaves.length === 1) return leafHash(leaves[0] as Uint8Array)
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

const data = Array.from({ length: 70 }, (_, i) => Buffer.from(`entry ${i}`))

function treeOf (n: number): MemoryTree {
  const t = new MemoryTree()
  for (const d of data.slice(0, n)) t.append(leafHash(d))
  return t
}

describe('RFC 6962 tree and proofs', () => {
  const tree = treeOf(70)

  it('roots match the RFC definition for every size, including earlier sizes of a bigger tree', () => {
    for (let n = 0; n <= 70; n++) expect(Buffer.from(tree.root(n))).toEqual(Buffer.from(mth(data.slice(0, n))))
  })

  it('every inclusion proof verifies, and a flipped bit or wrong index does not', () => {
    for (let n = 1; n <= 70; n++) {
      const root = tree.root(n)
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n)
        verifyInclusion(i, n, leafHash(data[i] as Buffer), proof, root)
        if (proof.length > 0) {
          const bad = proof.map(p => Buffer.from(p))
          const first = bad[0] as Buffer
          first[0] = (first[0] ?? 0) ^ 1
          expect(() => verifyInclusion(i, n, leafHash(data[i] as Buffer), bad, root)).toThrow(ProofError)
          expect(() => verifyInclusion(i, n, leafHash(data[i] as Buffer), proof.slice(1), root)).toThrow(ProofError)
        }
        if (n > 1) expect(() => verifyInclusion((i + 1) % n, n, leafHash(data[i] as Buffer), proof, root)).toThrow(ProofError)
      }
    }
  })

  it('every consistency proof verifies; a proof against another history fails', () => {
    const other = new MemoryTree()
    for (let i = 0; i < 70; i++) other.append(leafHash(i === 5 ? Buffer.from('forged') : data[i] as Buffer))
    for (let n = 1; n <= 70; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n)
        verifyConsistency(m, n, proof, tree.root(m), tree.root(n))
        if (m > 5 && m < n) expect(() => verifyConsistency(m, n, proof, other.root(m), tree.root(n))).toThrow(ProofError)
      }
    }
  })

  it('an RFC 6962 consistency proof fixes the old root unless the old size is a power of two', () => {
    const forked = new MemoryTree()
    for (let i = 0; i < 40; i++) forked.append(leafHash(i === 3 ? Buffer.from('x') : data[i] as Buffer))
    const r = consistencyRoots(33, 70, tree.consistencyProof(33, 70), forked.root(33))
    expect(Buffer.from(r.newRoot)).toEqual(Buffer.from(tree.root(70)))
    expect(Buffer.from(r.oldRoot)).toEqual(Buffer.from(tree.root(33)))
    expect(Buffer.from(r.oldRoot).equals(forked.root(33))).toBe(false)
    // From 32 the old tree's hash is left out: the caller's root stands in, so a forked one
    // leads to another new root instead.
    const p32 = tree.consistencyProof(32, 70)
    expect(p32.some(h => Buffer.from(h).equals(tree.root(32)))).toBe(false)
    expect(Buffer.from(consistencyRoots(32, 70, p32, tree.root(32)).newRoot)).toEqual(Buffer.from(tree.root(70)))
    expect(Buffer.from(consistencyRoots(32, 70, p32, forked.root(32)).newRoot).equals(tree.root(70))).toBe(false)
  })

  it('tiles are slices of level 8k hashes, wide as the tree allows', () => {
    const big = new MemoryTree()
    for (let i = 0; i < 70_000; i++) big.append(leafHash(Buffer.from(String(i))))
    expect(tileWidthAt(0, 273, 70_000)).toBe(112)
    expect(tileWidthAt(1, 1, 70_000)).toBe(17)
    expect(tileWidthAt(2, 0, 70_000)).toBe(1)
    const t1 = big.tile(1, 0, 256)
    expect(t1?.subarray(0, 32)).toEqual(Buffer.from(big.root(256)))
    expect(big.tile(0, 273, 113)).toBeUndefined()
    expect(big.tile(2, 0, 1)).toEqual(Buffer.from(big.root(65536)))
  })
})

describe('tile paths and entry bundles', () => {
  it('encodes and parses C2SP paths', () => {
    expect(encodeTileIndex(1234067)).toBe('x001/x234/067')
    expect(encodeTileIndex(5)).toBe('005')
    expect(tilePath({ level: 0, index: 1234067, width: 256 })).toBe('tile/0/x001/x234/067')
    expect(tilePath({ level: 'entries', index: 1, width: 7 })).toBe('tile/entries/001.p/7')
    expect(parseTilePath('tile/2/x001/234.p/17')).toEqual({ level: 2, index: 1234, width: 17 })
    expect(parseTilePath('tile/entries/000')).toEqual({ level: 'entries', index: 0, width: 256 })
    for (const bad of ['tile/0/1', 'tile/0/x000/001', 'tile/0/001.p/256', 'tile/0/001.p/0', 'tile/64/000', 'tile/01/000', 'tile/0/001/']) {
      expect(parseTilePath(bad)).toBeUndefined()
    }
  })

  it('round-trips entry bundles and names a cut-short one', () => {
    const entries = [formatEntry('claim', 'a'.repeat(64)), formatEntry('announcement', 'b'.repeat(64))]
    const bundle = encodeEntryBundle(entries)
    expect(decodeEntryBundle(bundle)).toEqual(entries)
    expect(() => decodeEntryBundle(bundle.subarray(0, 10))).toThrow(/claims 71 bytes/)
    expect(parseEntry(entries[0] as Buffer)).toEqual({ kind: 'claim', id: 'a'.repeat(64) })
    expect(() => formatEntry('claim', 'nope')).toThrow(/64 lowercase hex/)
  })
})

describe('signed notes, checkpoints, cosignatures', () => {
  const log = generateKeyPairSync('ed25519')
  const witness = generateKeyPairSync('ed25519')
  const text = formatCheckpoint({ origin: 'example.com/log', size: 7, rootHash: treeOf(7).root() })

  it('signs and opens a checkpoint; a changed byte or a foreign key fails', () => {
    const note = signNote(text, 'example.com/log', log.privateKey)
    expect(openNote(note, 'example.com/log', log.publicKey).text).toBe(text)
    expect(parseCheckpoint(text).size).toBe(7)
    expect(() => openNote(note.replace('\n7\n', '\n8\n'), 'example.com/log', log.publicKey)).toThrow(NoteError)
    expect(() => openNote(note, 'example.com/log', witness.publicKey)).toThrow(/no signature/)
    const vkey = formatVerifierKey('example.com/log', log.publicKey)
    expect(parseVerifierKey(vkey).name).toBe('example.com/log')
    expect(() => parseVerifierKey(vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).toThrow(/key hash/)
  })

  it('cosigns with cosignature/v1 and checks the timestamped signature', () => {
    const line = cosignatureLine(text, 'w.example/1', witness.privateKey, 1700000000)
    const note = `${signNote(text, 'example.com/log', log.privateKey)}${line}\n`
    const sig = parseNote(note).signatures[1]
    if (sig === undefined) throw new Error('no cosignature parsed')
    expect(checkCosignature(text, sig, 'w.example/1', witness.publicKey)).toBe(1700000000)
    expect(checkCosignature(text.replace('\n7\n', '\n8\n'), sig, 'w.example/1', witness.publicKey)).toBeUndefined()
    expect(checkCosignature(text, sig, 'w.example/1', log.publicKey)).toBeUndefined()
  })

  it('refuses malformed checkpoints with a reason', () => {
    expect(() => parseCheckpoint('o\n07\nAAAA\n')).toThrow(/leading zeros/)
    expect(() => parseCheckpoint('o\n7\nAAAA\n')).toThrow(/32 bytes/)
    expect(() => parseNote('no blank line\n— a AAAAAAA=\n')).toThrow(NoteError)
  })
})

describe('split-view proofs', () => {
  const key = generateKeyPairSync('ed25519')
  const origin = 'neko-rebuilder/log/x'
  const honest = treeOf(40)
  const forked = new MemoryTree()
  for (let i = 0; i < 40; i++) forked.append(leafHash(i === 3 ? Buffer.from('x') : data[i] as Buffer))
  const note = (t: MemoryTree, size: number): string => signNote(formatCheckpoint({ origin, size, rootHash: t.root(size) }), origin, key.privateKey)
  const b64 = (hs: Uint8Array[]): string[] => hs.map(h => Buffer.from(h).toString('base64'))

  it('accepts two sizes whose proof fixes another old root, and equal sizes with two roots', () => {
    verifySplitView({ origin, first: note(forked, 20), second: note(honest, 40), proof: b64(honest.consistencyProof(20, 40)) }, key.publicKey)
    verifySplitView({ origin, first: note(forked, 40), second: note(honest, 40), proof: [] }, key.publicKey)
  })

  it('refuses consistent checkpoints and proofs that lead nowhere', () => {
    expect(() => verifySplitView({ origin, first: note(honest, 20), second: note(honest, 40), proof: b64(honest.consistencyProof(20, 40)) }, key.publicKey)).toThrow(/consistent/)
    expect(() => verifySplitView({ origin, first: note(forked, 20), second: note(honest, 40), proof: b64(forked.consistencyProof(20, 40)) }, key.publicKey)).toThrow(/proves nothing/)
    // An RFC 6962 proof from a power-of-two size does not fix the old root: it cannot show a fork.
    expect(() => verifySplitView({ origin, first: note(forked, 16), second: note(honest, 40), proof: b64(honest.consistencyProof(16, 40)) }, key.publicKey)).toThrow(/power of two/)
    expect(() => verifySplitView({ origin, first: note(honest, 40), second: note(honest, 40), proof: [] }, key.publicKey)).toThrow(/agree/)
  })
})

describe('inclusion lines in a bundle', () => {
  it('takes {"tlogInclusion"} lines out, keeps line numbers and names a malformed one', () => {
    const ev = { id: 'a'.repeat(64), kind: 'claim', vkey: 'x+00000000+AA==', index: 0, size: 1, proof: [], checkpoint: 'c' }
    const r = takeInclusionLines(`{"payloadType":"x"}\n${JSON.stringify({ tlogInclusion: ev })}\n{"tlogInclusion": {"id": 3}}\n`)
    expect(r.text).toBe('{"payloadType":"x"}\n\n\n')
    expect(r.lines).toEqual(['{"payloadType":"x"}', '', '', ''])
    expect(r.evidence.get('a'.repeat(64))).toEqual(ev)
    expect(r.errors).toEqual([{ line: 3, reason: 'not {id, kind, vkey, index, size, proof, checkpoint}' }])
    expect(checkWitnessed('claim', 'b'.repeat(64), ev as never, { threshold: 1, keys: new Map() })).toEqual({ ok: false, reason: 'the inclusion proof is for another message' })
  })

  it('finds them after blanks and whitespace, and leaves a bundle without any as it came', () => {
    const ev = { id: 'c'.repeat(64), kind: 'announcement', vkey: 'x+00000000+AA==', index: 1, size: 2, proof: ['AA=='], checkpoint: 'c' }
    const r = takeInclusionLines(`{"signatures":[]}\r\n\n \t{ "tlogInclusion" :${JSON.stringify(ev)}}\r\n{"tlogInclusionX": 1}\n{"payload":"tlogInclusion"}`)
    expect(r.evidence.get('c'.repeat(64))).toEqual(ev)
    expect(r.errors).toEqual([])
    expect(r.lines).toEqual(['{"signatures":[]}\r', '', '', '{"tlogInclusionX": 1}', '{"payload":"tlogInclusion"}'])
    const plain = '{"payload":"a"}\r\n\n{"signatures":[]}\n'
    const none = takeInclusionLines(plain)
    expect(none.text).toBe(plain)
    expect(none.lines).toEqual(plain.split('\n'))
    expect(none.evidence.size).toBe(0)
  })
})
