import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createOutputKeeper } from '../../src/node/divergence/index.js'
import { recogniseOwnBytes } from '../../src/node/compare/own-bytes.js'
import { silentLogger } from '../../src/node/logger.js'

const digest = (i: number): string => `sha256:${i.toString(16).padStart(64, '0')}`
const kept = async (dir: string): Promise<string[]> => (await readdir(dir)).sort()

describe('output keeper', () => {
  let dir: string
  let src: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-outputs-'))
    src = await mkdtemp(join(tmpdir(), 'neko-outputs-src-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
    await rm(src, { recursive: true, force: true })
  })

  async function tarball (name: string, bytes: number): Promise<string> {
    const file = join(src, name)
    await writeFile(file, Buffer.alloc(bytes, name))
    return file
  }

  it('keeps the newest outputs within count and bytes, never more at any moment, oldest first', async () => {
    const outputs = createOutputKeeper({ log: silentLogger().forComponent('test') }, { dir: join(dir, 'outputs'), maxCount: 2, maxBytes: 10_000 })
    const seen: number[] = []
    for (let i = 1; i <= 4; i++) {
      expect(await outputs.put(digest(i), await tarball(`t${i}`, 3000))).toBe(true)
      // Distinct ages: the order of keeping is the order of age.
      await utimes(join(outputs.dir, `${digest(i).slice(7)}.oci.tar`), new Date(), new Date(Date.now() - (10 - i) * 1000))
      seen.push((await kept(outputs.dir)).length)
    }
    expect(Math.max(...seen)).toBe(2)
    expect(await outputs.get(digest(2))).toBeUndefined()
    expect(await outputs.get(digest(4))).toBe(join(outputs.dir, `${digest(4).slice(7)}.oci.tar`))
    expect((await stat((await outputs.get(digest(3)))!)).size).toBe(3000)

    // Bytes: an 8000-byte output leaves no room for a 3000-byte one under 10 000 bytes.
    await outputs.put(digest(5), await tarball('t5', 8000))
    expect(await kept(outputs.dir)).toEqual([`${digest(5).slice(7)}.oci.tar`])
    // One larger than the whole allowance is not kept, and takes nothing away.
    expect(await outputs.put(digest(6), await tarball('t6', 20_000))).toBe(false)
    expect(await kept(outputs.dir)).toEqual([`${digest(5).slice(7)}.oci.tar`])
    // The workspace's tarball can go: the kept one stays whole.
    await rm(join(src, 't5'))
    expect((await stat((await outputs.get(digest(5)))!)).size).toBe(8000)
  })

  it('applies smaller bounds, age and half-written copies at the next start', async () => {
    const first = createOutputKeeper({ log: silentLogger().forComponent('test') }, { dir, maxCount: 5 })
    for (let i = 1; i <= 4; i++) await first.put(digest(i), await tarball(`t${i}`, 100))
    await utimes(join(dir, `${digest(1).slice(7)}.oci.tar`), new Date(), new Date(Date.now() - 3 * 24 * 3600_000))
    await writeFile(join(dir, `${digest(9).slice(7)}.oci.tar.tmp`), 'half')
    const restarted = createOutputKeeper({ log: silentLogger().forComponent('test') }, { dir, maxCount: 2, maxAgeMs: 24 * 3600_000 })
    expect(await restarted.prune()).toBe(3)
    expect(await kept(dir)).toHaveLength(2)
    expect(await restarted.get(digest(1))).toBeUndefined()
  })

  it('refuses bad bounds and a bad digest', async () => {
    expect(() => createOutputKeeper({ log: silentLogger().forComponent('test') }, { dir, maxBytes: 0 })).toThrow(/outputs.maxBytes/)
    const outputs = createOutputKeeper({ log: silentLogger().forComponent('test') }, { dir })
    await expect(outputs.get('sha256:../../etc')).rejects.toThrow(/manifestDigest/)
  })
})

describe('causes from one side\'s bytes', () => {
  const head = (bytes: number[], fill = 32): Buffer => Buffer.concat([Buffer.from(bytes), Buffer.alloc(Math.max(0, fill - bytes.length))])
  const text = (s: string): { content: Buffer, complete: boolean } => ({ content: Buffer.from(s), complete: true })

  it('names a gzip header time, a timestamp .pyc, a zip member, a random id and a stamped line', () => {
    // gzip: magic, deflate, no flags, MTIME 2026-11-27T10:00:00Z little-endian.
    const mtime = Date.UTC(2026, 10, 27, 10) / 1000
    const gz = head([0x1f, 0x8b, 8, 0, mtime & 0xff, (mtime >> 8) & 0xff, (mtime >> 16) & 0xff, mtime >>> 24, 0, 3])
    expect(recogniseOwnBytes('usr/share/doc/x/changelog.gz', gz, undefined, false)).toEqual({ id: 'gzip-header', detail: 'gzip header mtime 2026-11-27T10:00:00Z on this side' })
    expect(recogniseOwnBytes('a.gz', head([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), undefined, true)).toBeUndefined()
    const pyc = head([0x55, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, mtime & 0xff, (mtime >> 8) & 0xff, (mtime >> 16) & 0xff, mtime >>> 24, 16, 0, 0, 0])
    expect(recogniseOwnBytes('app/__pycache__/m.cpython-311.pyc', pyc, undefined, true)?.detail).toBe('timestamp-based .pyc, source mtime 2026-11-27T10:00:00Z on this side')
    expect(recogniseOwnBytes('lib/a.jar', head([0x50, 0x4b, 3, 4]), undefined, true)?.id).toBe('zip-times')
    expect(recogniseOwnBytes('opt/instance-id', head([0x30]), text('0123456789abcdef0123456789abcdef\n'), true)?.id).toBe('machine-id')
    expect(recogniseOwnBytes('opt/build-info.txt', head([0x30]), text('version 1.2\nbuilt 2026-11-27T10:00:00Z\n'), true)).toEqual({ id: 'embedded-timestamp', detail: 'holds a date or time: built 2026-11-27T10:00:00Z' })
  })

  it('says nothing where one side cannot tell: other sizes, plain text, binaries', () => {
    expect(recogniseOwnBytes('opt/build-info.txt', head([0x30]), text('built 2026-11-27T10:00:00Z\n'), false)).toBeUndefined()
    expect(recogniseOwnBytes('opt/readme.txt', head([0x30]), text('hello\n'), true)).toBeUndefined()
    expect(recogniseOwnBytes('usr/bin/app', head([0x7f, 0x45, 0x4c, 0x46]), undefined, true)).toBeUndefined()
  })
})
