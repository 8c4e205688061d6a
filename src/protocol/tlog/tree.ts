/**
 * An append-only RFC 6962 tree held in memory: every complete subtree hash at every level,
 * in chunks of 256 hashes. A chunk at level 8L is exactly a C2SP tlog-tiles tile of level L,
 * so serving a tile is a slice, and proofs for any earlier size read only stored nodes.
 * Memory: about 64 bytes per entry (32 for the leaf, 32 for all the levels above together).
 */
import { HASH_SIZE, nodeHash } from './hash.js'
import { ProofError } from './errors.js'
import { consistencyProof, inclusionProof, rootHash, type NodeReader } from './proof.js'
import { TILE_HEIGHT, TILE_WIDTH } from './tiles.js'

const CHUNK_BYTES = TILE_WIDTH * HASH_SIZE

export class MemoryTree {
  private readonly levels: Buffer[][] = []
  private readonly counts: number[] = []
  readonly read: NodeReader = (level, index) => this.node(level, index)

  /** Entries appended so far. */
  get size (): number {
    return this.counts[0] ?? 0
  }

  /** Appends one leaf hash; returns its index. */
  append (leaf: Uint8Array): number {
    if (leaf.byteLength !== HASH_SIZE) throw new ProofError(`a leaf hash has ${HASH_SIZE} bytes, got ${leaf.byteLength}`)
    const index = this.size
    let level = 0
    let hash: Uint8Array = leaf
    for (;;) {
      const i = this.push(level, hash)
      if (i % 2 === 0) break
      hash = nodeHash(this.node(level, i - 1), hash)
      level++
    }
    return index
  }

  private push (level: number, hash: Uint8Array): number {
    const chunks = this.levels[level] ?? (this.levels[level] = [])
    const i = this.counts[level] ?? 0
    const c = Math.floor(i / TILE_WIDTH)
    const chunk = chunks[c] ?? (chunks[c] = Buffer.allocUnsafe(CHUNK_BYTES))
    chunk.set(hash, (i % TILE_WIDTH) * HASH_SIZE)
    this.counts[level] = i + 1
    return i
  }

  private chunk (level: number, index: number): Buffer {
    const chunk = this.levels[level]?.[index]
    if (chunk === undefined) throw new ProofError(`no hashes at level ${level}, chunk ${index}`)
    return chunk
  }

  /** Hashes stored at `level` (complete subtrees of 2^level entries). */
  count (level: number): number {
    return this.counts[level] ?? 0
  }

  /** The complete subtree hash at `level`, `index`. */
  node (level: number, index: number): Buffer {
    if (!(index >= 0 && index < this.count(level))) throw new ProofError(`no complete subtree at level ${level}, index ${index} in a tree of size ${this.size}`)
    const off = (index % TILE_WIDTH) * HASH_SIZE
    return this.chunk(level, Math.floor(index / TILE_WIDTH)).subarray(off, off + HASH_SIZE)
  }

  root (size: number = this.size): Uint8Array {
    this.checkSize(size)
    return rootHash(size, this.read)
  }

  inclusionProof (index: number, size: number = this.size): Uint8Array[] {
    this.checkSize(size)
    return inclusionProof(index, size, this.read)
  }

  consistencyProof (oldSize: number, newSize: number = this.size): Uint8Array[] {
    this.checkSize(newSize)
    return consistencyProof(oldSize, newSize, this.read)
  }

  /** Tile `index` of tile level `tileLevel`, `width` hashes wide (a copy); undefined when not yet that wide. */
  tile (tileLevel: number, index: number, width: number): Buffer | undefined {
    const level = tileLevel * TILE_HEIGHT
    if (width < 1 || width > TILE_WIDTH || index * TILE_WIDTH + width > this.count(level)) return undefined
    return Buffer.from(this.chunk(level, index).subarray(0, width * HASH_SIZE))
  }

  private checkSize (size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) throw new ProofError(`tree size ${String(size)} is not between 0 and ${this.size}`)
  }
}
