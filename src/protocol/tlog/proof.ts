/**
 * RFC 6962 / RFC 9162 proofs over a tree whose complete subtree hashes can be read.
 *
 * A `NodeReader` returns the hash of the complete subtree at `level` (0 = leaves) and
 * `index`, covering entries [index * 2^level, (index + 1) * 2^level). Such hashes never change
 * once the subtree is full, so one reader serves proofs for every earlier tree size too.
 * Sizes and indexes are plain numbers (safe up to 2^53); no 32-bit bit operations are used.
 */
import { nodeHash, EMPTY_ROOT, HASH_SIZE } from './hash.js'
import { ProofError } from './errors.js'

export type NodeReader = (level: number, index: number) => Uint8Array

/** Largest power of two strictly below n (n >= 2). */
function splitPoint (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** Exact for every safe integer (a float log2 rounds 2^53 - 1 up to 53). */
export function isPowerOfTwo (n: number): boolean {
  let k = 1
  while (k < n) k *= 2
  return k === n
}

function log2 (k: number): number {
  return Math.round(Math.log2(k))
}

function checkSize (name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new ProofError(`${name} must be a non-negative integer, got ${String(n)}`)
}

/** MTH(D[lo:hi]) where [lo, hi) is a node of the RFC 6962 tree of some size >= hi. */
export function subtreeHash (lo: number, hi: number, read: NodeReader): Uint8Array {
  const n = hi - lo
  if (n <= 0) throw new ProofError(`empty subtree [${lo}, ${hi})`)
  // A power-of-two range starting on a multiple of itself is a stored, complete node.
  if (isPowerOfTwo(n) && lo % n === 0) return read(log2(n), lo / n)
  const k = splitPoint(n)
  return nodeHash(subtreeHash(lo, lo + k, read), subtreeHash(lo + k, hi, read))
}

/** The root hash of the tree of the first `size` entries. */
export function rootHash (size: number, read: NodeReader): Uint8Array {
  checkSize('size', size)
  return size === 0 ? EMPTY_ROOT : subtreeHash(0, size, read)
}

/** Audit path of entry `index` in the tree of `size` entries (RFC 6962 2.1.1 PATH), leaf end first. */
export function inclusionProof (index: number, size: number, read: NodeReader): Uint8Array[] {
  checkSize('size', size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new ProofError(`index ${String(index)} is not below the tree size ${size}`)
  const out: Uint8Array[] = []
  const path = (m: number, lo: number, hi: number): void => {
    const n = hi - lo
    if (n === 1) return
    const k = splitPoint(n)
    if (m < lo + k) {
      path(m, lo, lo + k)
      out.push(subtreeHash(lo + k, hi, read))
    } else {
      path(m, lo + k, hi)
      out.push(subtreeHash(lo, lo + k, read))
    }
  }
  path(index, 0, size)
  return out
}

/**
 * Consistency proof from the tree of `oldSize` to the tree of `newSize` (RFC 6962 2.1.2 PROOF,
 * the form C2SP tlog-witness and Go's sumdb/tlog take): when `oldSize` is a power of two the
 * old tree is a node of the new one and its hash, which the verifier holds, is left out.
 */
export function consistencyProof (oldSize: number, newSize: number, read: NodeReader): Uint8Array[] {
  checkSize('oldSize', oldSize)
  checkSize('newSize', newSize)
  if (oldSize > newSize) throw new ProofError(`old size ${oldSize} exceeds new size ${newSize}`)
  if (oldSize === 0 || oldSize === newSize) return []
  const out: Uint8Array[] = []
  const sub = (m: number, lo: number, hi: number, whole: boolean): void => {
    const n = hi - lo
    if (m === n) {
      if (!whole) out.push(subtreeHash(lo, hi, read))
      return
    }
    const k = splitPoint(n)
    if (m <= k) {
      sub(m, lo, lo + k, whole)
      out.push(subtreeHash(lo + k, hi, read))
    } else {
      sub(m - k, lo + k, hi, false)
      out.push(subtreeHash(lo, lo + k, read))
    }
  }
  sub(oldSize, 0, newSize, true)
  return out
}

function checkHashes (what: string, hashes: readonly Uint8Array[]): void {
  if (hashes.length > 64) throw new ProofError(`${what} has ${hashes.length} hashes; a tree of at most 2^63 entries needs no more than 64`)
  for (const h of hashes) if (h.byteLength !== HASH_SIZE) throw new ProofError(`${what} holds a hash of ${h.byteLength} bytes, not ${HASH_SIZE}`)
}

const odd = (x: number): boolean => x % 2 === 1
const half = (x: number): number => Math.floor(x / 2)

/** The root that `proof` yields for leaf hash `leaf` at `index` in a tree of `size` (RFC 9162 2.1.3.2). */
export function rootFromInclusion (index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  checkSize('size', size)
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new ProofError(`index ${String(index)} is not below the tree size ${size}`)
  checkHashes('inclusion proof', proof)
  let fn = index
  let sn = size - 1
  let r: Uint8Array = leaf
  for (const p of proof) {
    if (sn === 0) throw new ProofError('inclusion proof is longer than the tree is deep')
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r)
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn) }
    } else {
      r = nodeHash(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  if (sn !== 0) throw new ProofError('inclusion proof is shorter than the tree is deep')
  return r
}

/** Throws ProofError unless `proof` shows `leaf` at `index` in the tree of `size` with root `root`. */
export function verifyInclusion (index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  const r = rootFromInclusion(index, size, leaf, proof)
  if (!Buffer.from(r).equals(root)) throw new ProofError(`inclusion proof of entry ${index} does not lead to the root of the tree of size ${size}`)
}

/**
 * The old and new roots an RFC 6962 consistency proof yields (RFC 9162 2.1.4.2, steps 3 to 6).
 * When `oldSize` is a power of two the proof leaves the old tree's hash out and the caller's
 * `oldRoot` stands in for it: only the new root then says anything. Otherwise the proof fixes
 * both, so a proof that leads to a signed new root but to another old root shows a split view.
 */
export function consistencyRoots (oldSize: number, newSize: number, proof: readonly Uint8Array[], oldRoot: Uint8Array): { oldRoot: Uint8Array, newRoot: Uint8Array } {
  checkSize('oldSize', oldSize)
  checkSize('newSize', newSize)
  checkHashes('consistency proof', proof)
  if (oldSize === 0 || oldSize >= newSize) throw new ProofError(`a consistency proof needs 0 < old size < new size, got ${oldSize} and ${newSize}`)
  if (proof.length === 0) throw new ProofError('consistency proof is empty')
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof
  let fn = oldSize - 1
  let sn = newSize - 1
  while (odd(fn)) { fn = half(fn); sn = half(sn) }
  const [first, ...rest] = path as [Uint8Array, ...Uint8Array[]]
  let fr = first
  let sr = first
  for (const c of rest) {
    if (sn === 0) throw new ProofError('consistency proof is longer than the tree is deep')
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (!odd(fn)) while (!odd(fn) && fn !== 0) { fn = half(fn); sn = half(sn) }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  if (sn !== 0) throw new ProofError('consistency proof is shorter than the tree is deep')
  return { oldRoot: fr, newRoot: sr }
}

/** Throws ProofError unless `proof` (RFC 6962 form) shows the tree of `oldSize` is a prefix of the tree of `newSize`. */
export function verifyConsistency (oldSize: number, newSize: number, proof: readonly Uint8Array[], oldRoot: Uint8Array, newRoot: Uint8Array): void {
  if (oldSize === newSize) {
    if (proof.length !== 0) throw new ProofError('a consistency proof between equal sizes must be empty')
    if (!Buffer.from(oldRoot).equals(newRoot)) throw new ProofError(`two different roots for the tree of size ${oldSize}`)
    return
  }
  if (oldSize === 0) {
    if (proof.length !== 0) throw new ProofError('a consistency proof from the empty tree must be empty')
    return
  }
  const r = consistencyRoots(oldSize, newSize, proof, oldRoot)
  if (!Buffer.from(r.oldRoot).equals(oldRoot)) throw new ProofError(`consistency proof does not lead to the root of the tree of size ${oldSize}`)
  if (!Buffer.from(r.newRoot).equals(newRoot)) throw new ProofError(`consistency proof does not lead to the root of the tree of size ${newSize}`)
}
