/**
 * A split-view proof: two checkpoints signed by one log that cannot both be true. Either
 * they have the same size and different roots, or the newer one comes with an RFC 6962
 * consistency proof that leads to its root but yields a different root for the older size:
 * the hashes that authenticate the newer tree fix the older tree's root, so the log showed
 * two histories. That needs an older size other than a power of two: from such a size the
 * proof leaves the older tree's hash out, so it can fail to prove but never show a fork.
 */
import type { KeyObject } from 'node:crypto'
import { parseCheckpoint } from './checkpoint.js'
import { ProofError } from './errors.js'
import { openNote } from './note.js'
import { consistencyRoots, isPowerOfTwo } from './proof.js'

export interface SplitViewProof {
  origin: string
  /** The checkpoint seen first (smaller or equal size), as a signed note. */
  first: string
  /** The checkpoint that contradicts it. */
  second: string
  /** RFC 6962 consistency proof from the first size to the second (base64); empty for equal sizes. */
  proof: string[]
}

/** Throws unless `p` proves, by `logKey`'s own signatures, that the log showed two views. */
export function verifySplitView (p: SplitViewProof, logKey: KeyObject): void {
  const a = parseCheckpoint(openNote(p.first, p.origin, logKey).text)
  const b = parseCheckpoint(openNote(p.second, p.origin, logKey).text)
  if (a.origin !== p.origin || b.origin !== p.origin) throw new ProofError('the checkpoints are not of the named log')
  if (a.size === b.size) {
    if (Buffer.from(a.rootHash).equals(b.rootHash)) throw new ProofError('the two checkpoints agree')
    return
  }
  if (a.size > b.size || a.size === 0) throw new ProofError('the first checkpoint must be the smaller, non-empty one')
  if (isPowerOfTwo(a.size)) throw new ProofError(`from a size that is a power of two (${a.size}) a consistency proof leaves the older root out: it cannot show a split view`)
  const r = consistencyRoots(a.size, b.size, p.proof.map(h => Buffer.from(h, 'base64')), a.rootHash)
  if (!Buffer.from(r.newRoot).equals(b.rootHash)) throw new ProofError('the proof does not lead to the second checkpoint: it proves nothing')
  if (Buffer.from(r.oldRoot).equals(a.rootHash)) throw new ProofError('the checkpoints are consistent')
}

/** A split-view proof with the key id of the log that signed it, as a witness keeps it. */
export interface KeyedSplitView extends SplitViewProof {
  logKeyId: string
}

/** Why a builder whose log showed two views is not counted, as verdicts show it. */
export const SPLIT_VIEW_REASON = 'split view: its transparency log signed two inconsistent checkpoints'

/**
 * The policy builders to set aside for split views, each proof checked with the builder's own
 * key: like an equivocating builder, a log that showed two histories cannot be counted on.
 * A proof against a key outside the policy sets nobody aside and is not checked.
 */
export function splitViewSetAside (builderKeys: ReadonlyMap<string, KeyObject>, proofs: readonly KeyedSplitView[]): { setAside: Map<string, string>, proven: boolean[] } {
  const setAside = new Map<string, string>()
  const proven = proofs.map(p => {
    // Proofs may come from another node: anything but a checked proof sets nobody aside.
    const key = typeof p?.logKeyId === 'string' ? builderKeys.get(p.logKeyId) : undefined
    if (key === undefined) return false
    try {
      verifySplitView(p, key)
    } catch {
      return false
    }
    setAside.set(p.logKeyId, SPLIT_VIEW_REASON)
    return true
  })
  return { setAside, proven }
}
