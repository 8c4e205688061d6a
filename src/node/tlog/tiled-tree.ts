/**
 * The log's Merkle tree with bounded memory: only the hashes at level 8 and above (one per
 * full level-0 tile, and everything above: about a quarter of a byte per entry) and the
 * leaves of the rightmost, partial tile stay in memory. A hash below level 8 inside a full
 * tile is read from that tile, which the log persists beside its entries with its inner
 * levels (511 hashes, 16 KiB: reading one back costs no hashing); recently used tiles are
 * kept in memory.
 *
 * Proofs are computed by the pure functions of `protocol/tlog/proof.ts` through a reader
 * that throws `MissingTile` when a tile is not loaded; the tile is then read and the
 * computation run again. A proof touches at most a handful of tiles, so it converges fast.
 */
import { HASH_SIZE, nodeHash } from '../../protocol/tlog/hash.js'
import { ProofError } from '../../protocol/tlog/errors.js'
import { consistencyProof, inclusionProof, rootHash, type NodeReader } from '../../protocol/tlog/proof.js'
import { TILE_HEIGHT, TILE_WIDTH } from '../../protocol/tlog/tiles.js'
import { MemoryTree } from '../../protocol/tlog/tree.js'
import { TlogStorageError } from './errors.js'

const DEFAULT_CACHE_TILES = 256
/** Hashes of a tile with its inner levels: 256 + 128 + … + 1. */
const TILE_NODES = 2 * TILE_WIDTH - 1
/** Tile loads one computation may ask for before it is deemed not to converge. */
const MAX_LOADS = 32

export interface TiledTreeComponents {
  /** Full tile `index` as persisted: its 511 hashes (`CompletedTile.nodes`). */
  readTile: (index: number) => Promise<Buffer | undefined>
}

export interface TiledTreeInit {
  /** Full tiles kept in memory with their inner levels (16 KiB each; default 256). */
  cacheTiles?: number
}

/** A full level-0 tile completed by an append, to persist with its entries. */
export interface CompletedTile {
  index: number
  /** What to persist: the 256 leaf hashes, then each level above them up to the root (511 hashes, 16 KiB). */
  nodes: Buffer
  /** Its root: the level-8 hash, as kept in memory. */
  root: Buffer
}

export interface PreparedAppend {
  tiles: CompletedTile[]
  /** Makes the leaves part of the tree; call only once they are durable. */
  commit: () => void
}

export interface TiledTree {
  readonly size: number
  /** Full level-0 tiles (their roots are in memory). */
  readonly fullTiles: number
  /** Loads the state a log persisted: the roots of its full tiles and the leaves after them. */
  load: (roots: readonly Buffer[], tail: readonly Buffer[]) => void
  /** Computes what appending `leaves` completes, without changing the tree. */
  prepare: (leaves: readonly Buffer[]) => PreparedAppend
  root: (size: number) => Promise<Uint8Array>
  inclusionProof: (index: number, size: number) => Promise<Uint8Array[]>
  consistencyProof: (oldSize: number, newSize: number) => Promise<Uint8Array[]>
  /** Tile `index` of tile level `tileLevel`, `width` hashes wide; undefined when not yet that wide. */
  tile: (tileLevel: number, index: number, width: number) => Promise<Buffer | undefined>
}

class MissingTile extends Error {
  constructor (readonly index: number) {
    super(`tile ${index} is not loaded`)
  }
}

function treeOf (leaves: readonly Uint8Array[]): MemoryTree {
  const t = new MemoryTree()
  for (const l of leaves) t.append(l)
  return t
}

/** Where level `level` (0 to 8) starts in a tile's hashes, counted in hashes. */
const levelStart = (level: number): number => 2 * TILE_WIDTH - (2 * TILE_WIDTH >> level)

/** A full tile's 256 leaf hashes and every level above them, up to its root, in one buffer. */
class TileNodes {
  readonly buf: Buffer
  /** From the 511 hashes as persisted, or from 256 leaf hashes (the rest hashed here). */
  constructor (tile: Buffer) {
    if (tile.byteLength === TILE_NODES * HASH_SIZE) {
      this.buf = tile
      return
    }
    if (tile.byteLength !== TILE_WIDTH * HASH_SIZE) throw new TlogStorageError(`a stored tile holds ${tile.byteLength} bytes, not ${TILE_NODES * HASH_SIZE}`)
    this.buf = Buffer.allocUnsafe(TILE_NODES * HASH_SIZE)
    tile.copy(this.buf)
    for (let level = 1; level <= TILE_HEIGHT; level++) {
      for (let i = 0; i < TILE_WIDTH >> level; i++) this.buf.set(nodeHash(this.node(level - 1, 2 * i), this.node(level - 1, 2 * i + 1)), (levelStart(level) + i) * HASH_SIZE)
    }
  }

  node (level: number, index: number): Buffer {
    const off = (levelStart(level) + index) * HASH_SIZE
    return this.buf.subarray(off, off + HASH_SIZE)
  }

  get root (): Buffer { return this.node(TILE_HEIGHT, 0) }
  get bytes (): Buffer { return this.buf.subarray(0, TILE_WIDTH * HASH_SIZE) }
}

export function createTiledTree (components: TiledTreeComponents, init: TiledTreeInit = {}): TiledTree {
  const capacity = Math.max(8, init.cacheTiles ?? DEFAULT_CACHE_TILES)
  let upper = new MemoryTree() // leaves = level-8 hashes, one per full tile
  let tailLeaves: Buffer[] = []
  let tail = new MemoryTree()
  const cache = new Map<number, TileNodes>() // insertion order = least recently used first

  const fullTiles = (): number => upper.size
  const size = (): number => upper.size * TILE_WIDTH + tail.size

  function remember (index: number, t: TileNodes): void {
    cache.delete(index)
    cache.set(index, t)
    while (cache.size > capacity) cache.delete(cache.keys().next().value as number)
  }

  const read: NodeReader = (level, index) => {
    if (level >= TILE_HEIGHT) return upper.node(level - TILE_HEIGHT, index)
    const perTile = 2 ** (TILE_HEIGHT - level)
    const t = Math.floor(index / perTile)
    const local = index - t * perTile
    if (t === fullTiles()) return tail.node(level, local)
    if (t > fullTiles()) throw new ProofError(`no complete subtree at level ${level}, index ${index} in a tree of size ${size()}`)
    const cached = cache.get(t)
    if (cached === undefined) throw new MissingTile(t)
    remember(t, cached)
    return cached.node(level, local)
  }

  async function loadTile (index: number): Promise<TileNodes> {
    const cached = cache.get(index)
    if (cached !== undefined) return cached
    const bytes = await components.readTile(index)
    if (bytes === undefined) throw new TlogStorageError(`tile ${index} of the log is missing from its database`)
    const t = new TileNodes(bytes)
    // A tile whose root is not the one kept for it would make every proof through it wrong.
    if (!t.root.equals(upper.node(0, index))) throw new TlogStorageError(`stored tile ${index} does not end in its root`)
    remember(index, t)
    return t
  }

  /** Runs a pure computation, loading each tile it turns out to need. */
  async function withTiles<T> (fn: () => T): Promise<T> {
    for (let loads = 0; ; loads++) {
      try {
        return fn()
      } catch (err) {
        if (!(err instanceof MissingTile) || loads >= MAX_LOADS) throw err
        await loadTile(err.index)
      }
    }
  }

  function checkSize (n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || n > size()) throw new ProofError(`tree size ${String(n)} is not between 0 and ${size()}`)
  }

  return {
    get size () { return size() },
    get fullTiles () { return fullTiles() },
    load (roots, leaves) {
      if (leaves.length >= TILE_WIDTH) throw new TlogStorageError(`${leaves.length} leaves after the last full tile: a full tile is missing`)
      upper = treeOf(roots)
      tailLeaves = [...leaves]
      tail = treeOf(tailLeaves)
      cache.clear()
    },
    prepare (leaves) {
      const all = [...tailLeaves, ...leaves]
      const tiles: CompletedTile[] = []
      const nodes: TileNodes[] = []
      let i = 0
      for (; i + TILE_WIDTH <= all.length; i += TILE_WIDTH) {
        const t = new TileNodes(Buffer.concat(all.slice(i, i + TILE_WIDTH)))
        nodes.push(t)
        tiles.push({ index: fullTiles() + tiles.length, nodes: t.buf, root: Buffer.from(t.root) })
      }
      const rest = all.slice(i)
      const base = fullTiles()
      return {
        tiles,
        commit () {
          if (fullTiles() !== base) throw new TlogStorageError('the tree changed between preparing and committing an append')
          tiles.forEach((t, k) => {
            upper.append(t.root)
            remember(t.index, nodes[k] as TileNodes)
          })
          if (tiles.length > 0) {
            tailLeaves = rest
            tail = treeOf(rest)
          } else {
            // The common case, a few leaves at a time: extend the tail rather than rebuild it.
            for (const l of leaves) tail.append(l)
            tailLeaves = rest
          }
        }
      }
    },
    async root (n) {
      checkSize(n)
      return await withTiles(() => rootHash(n, read))
    },
    async inclusionProof (index, n) {
      checkSize(n)
      return await withTiles(() => inclusionProof(index, n, read))
    },
    async consistencyProof (oldSize, newSize) {
      checkSize(newSize)
      return await withTiles(() => consistencyProof(oldSize, newSize, read))
    },
    async tile (tileLevel, index, width) {
      if (width < 1 || width > TILE_WIDTH) return undefined
      if (tileLevel >= 1) return upper.tile(tileLevel - 1, index, width)
      if (index * TILE_WIDTH + width > size()) return undefined
      if (index === fullTiles()) return tail.tile(0, 0, width)
      const t = await loadTile(index)
      return Buffer.from(t.bytes.subarray(0, width * HASH_SIZE))
    }
  }
}
