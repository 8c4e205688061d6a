import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createStore } from '../../src/node/store/index.js'
import { createTiledTree, type TiledTree } from '../../src/node/tlog/tiled-tree.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { entryLeafHash, MemoryTree, TILE_WIDTH } from '../../src/protocol/tlog/index.js'
import { fakeId, messageId, putMessages } from './messages.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('tiled tree: hashes below level 8 read from persisted tiles', () => {
  const N = TILE_WIDTH * 20 + 37
  const leaves = Array.from({ length: N }, (_, i) => entryLeafHash('claim', fakeId(i)))
  const reference = new MemoryTree()
  for (const l of leaves) reference.append(l)
  const stored = new Map<number, Buffer>()
  let reads = 0
  let tree: TiledTree

  beforeAll(() => {
    tree = createTiledTree({ readTile: async (i) => { reads++; return stored.get(i) } }, { cacheTiles: 8 })
    // Appended in uneven batches, persisting each completed tile as the log does.
    for (let at = 0; at < N;) {
      const n = Math.min(N - at, 1 + (at * 7) % 300)
      const p = tree.prepare(leaves.slice(at, at + n))
      expect(tree.size).toBe(at) // nothing changes before commit
      for (const t of p.tiles) stored.set(t.index, t.nodes)
      p.commit()
      at += n
    }
  })

  it('gives the same roots, proofs and tiles as the all-in-memory tree, loading tiles as needed', async () => {
    expect(tree.size).toBe(N)
    expect(tree.fullTiles).toBe(20)
    for (const size of [1, 2, 255, 256, 257, 4096, 4097, 5000, N]) expect(hex(await tree.root(size))).toBe(hex(reference.root(size)))
    for (const [index, size] of [[0, N], [300, N], [4095, 4097], [N - 1, N], [1234, 2000]] as const) {
      expect((await tree.inclusionProof(index, size)).map(hex)).toEqual(reference.inclusionProof(index, size).map(hex))
    }
    for (const [a, b] of [[1, N], [256, N], [300, 5000], [4097, N], [N - 1, N]] as const) {
      expect((await tree.consistencyProof(a, b)).map(hex)).toEqual(reference.consistencyProof(a, b).map(hex))
    }
    for (const [level, index, width] of [[0, 3, 256], [0, 3, 10], [0, 20, 37], [1, 0, 20], [1, 0, 7]] as const) {
      expect(hex(await tree.tile(level, index, width) ?? Buffer.alloc(0))).toBe(hex(reference.tile(level, index, width) ?? Buffer.alloc(1)))
    }
    expect(await tree.tile(0, 20, 38)).toBeUndefined()
    expect(await tree.tile(1, 0, 21)).toBeUndefined()
    expect(reads).toBeGreaterThan(0)
  })

  it('loads from roots and the partial tile alone, and refuses a stored tile whose root is not the one kept', async () => {
    const roots = Array.from({ length: 20 }, (_, i) => reference.node(8, i))
    const again = createTiledTree({ readTile: async (i) => stored.get(i) }, { cacheTiles: 8 })
    again.load(roots, leaves.slice(20 * TILE_WIDTH))
    expect(hex(await again.root(N))).toBe(hex(reference.root()))
    expect((await again.inclusionProof(77, N)).map(hex)).toEqual(reference.inclusionProof(77, N).map(hex))
    const bad = Buffer.from(stored.get(5) as Buffer)
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1
    const corrupt = createTiledTree({ readTile: async (i) => i === 5 ? bad : stored.get(i) })
    corrupt.load(roots, [])
    await expect(corrupt.inclusionProof(5 * TILE_WIDTH + 1, 20 * TILE_WIDTH)).rejects.toThrow(/stored tile 5 does not end in its root/)
  })
})

describe('transparency log start', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-tiled-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes the tiles of a log kept before tiles were, once, and proves the same checkpoint', async () => {
    const identity = generateIdentity()
    const store = await createStore({}, { path: join(dir, 'store') })
    await putMessages(store, 0, 1000)
    let tlog = createTransparencyLog({ store, identity }, { path: join(dir, 'tlog') })
    await tlog.start()
    const before = tlog.checkpoint()
    const proof = await tlog.inclusion(messageId(300))
    await tlog.stop()
    // As an older version left it: entries, checkpoint, no tiles or roots.
    const db = new Level<string, string>(join(dir, 'tlog'), { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    await db.sublevel('t').clear()
    await db.sublevel('r').clear()
    await db.close()
    tlog = createTransparencyLog({ store, identity }, { path: join(dir, 'tlog') })
    await tlog.start()
    expect(tlog.checkpoint()).toBe(before)
    expect(await tlog.inclusion(messageId(300))).toEqual(proof)
    expect(await tlog.tile({ level: 0, index: 2, width: 256 })).toHaveLength(8192) // served: the leaf hashes alone
    await tlog.stop()
    await store.close()
  })
})
