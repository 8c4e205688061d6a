import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createManifestKeeper } from '../../src/node/divergence/index.js'
import { silentLogger } from '../../src/node/logger.js'
import type { FileManifest } from '../../src/node/compare/manifest.js'

const target = { repository: 'https://example.invalid/app', commit: 'c'.repeat(40), variant: 'default', platform: 'linux/amd64' }
const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`

function manifest (files: number): FileManifest {
  return {
    platform: 'linux/amd64',
    manifestDigest: digest(0),
    layers: [{ diffId: digest(1), entries: Array.from({ length: files }, (_, i) => ({ path: `f${i}`, type: 'file', size: 1, mode: 420, uid: 0, gid: 0, mtime: 0 })) }]
  }
}

describe('manifest keeper', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-keeper-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('keeps the newest manifests within count, bytes and age', async () => {
    const keeper = createManifestKeeper({ log: silentLogger().forComponent('test') }, { dir, maxCount: 3 })
    for (let i = 1; i <= 5; i++) {
      await keeper.put(target, digest(i), manifest(2))
      // Distinct mtimes: the order of age is the order of writing.
      await utimes(join(dir, `${digest(i).slice(7)}.json`), new Date(), new Date(Date.now() - (10 - i) * 1000))
    }
    await keeper.prune()
    expect(await keeper.get(digest(1))).toBeUndefined()
    expect(await keeper.get(digest(2))).toBeUndefined()
    expect((await keeper.get(digest(5)))?.manifest.layers[0]!.entries).toHaveLength(2)
    expect((await readdir(dir)).filter(n => n.endsWith('.json'))).toHaveLength(3)

    const small = createManifestKeeper({ log: silentLogger().forComponent('test') }, { dir, maxBytes: 5000 })
    await small.put(target, digest(9), manifest(200))
    // One manifest alone is over the byte bound: nothing older survives, and not it either.
    expect(await small.get(digest(9))).toBeUndefined()
    expect(await small.get(digest(5))).toBeUndefined()

    const aged = createManifestKeeper({ log: silentLogger().forComponent('test') }, { dir, maxAgeMs: 60_000 })
    await aged.put(target, digest(7), manifest(1))
    await utimes(join(dir, `${digest(7).slice(7)}.json`), new Date(), new Date(Date.now() - 120_000))
    expect(await aged.get(digest(7))).toBeUndefined()
  })

  it('drops a damaged manifest, refuses a bad digest and bad bounds', async () => {
    const keeper = createManifestKeeper({ log: silentLogger().forComponent('test') }, { dir })
    await writeFile(join(dir, `${digest(3).slice(7)}.json`), '{ half')
    expect(await keeper.get(digest(3))).toBeUndefined()
    expect(await readdir(dir)).toEqual([])
    await expect(keeper.get('sha256:xyz')).rejects.toThrow(/manifestDigest/)
    expect(() => createManifestKeeper({ log: silentLogger().forComponent('test') }, { dir, maxCount: 0 })).toThrow(/manifests.maxCount/)
  })
})
