/**
 * RFC 6962 (section 2.1) Merkle tree hashing with SHA-256: a leaf is hashed with a 0x00
 * prefix and an interior node with 0x01, so no leaf can pass for a node.
 */
import { createHash } from 'node:crypto'

export const HASH_SIZE = 32

const LEAF_PREFIX = Buffer.from([0])
const NODE_PREFIX = Buffer.from([1])

/** SHA-256(0x00 || entry). */
export function leafHash (entry: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest()
}

/** SHA-256(0x01 || left || right). */
export function nodeHash (left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest()
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest()
