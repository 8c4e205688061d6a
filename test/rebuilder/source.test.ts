import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkout, resolveRef, SourceError } from '../../src/node/rebuilder/index.js'
import { createFixtureRepo, serveGitRepos, type FixtureRepo } from '../helpers/fixtures.js'

describe('source', () => {
  let repo: FixtureRepo
  let work: string
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'source-test-'))
    repo = await createFixtureRepo({ files: { 'a.txt': 'one\n', 'bin/run': { content: '#!/bin/sh\n', mode: 0o775 } }, tag: 'v1.0.0', date: '2024-03-01T00:00:00Z' }, work)
    await repo.commit({ files: { 'a.txt': 'two\n' }, tag: 'v1.1.0-light', lightweight: true, date: '2024-03-02T00:00:00Z' })
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('resolves annotated and lightweight tags and commits, with committer time', async () => {
    const [first, second] = repo.commits
    expect(await resolveRef(repo.dir, 'v1.0.0')).toEqual({ commit: first!.commit, commitTime: Date.parse('2024-03-01T00:00:00Z') / 1000, tag: 'v1.0.0' })
    expect(await resolveRef(repo.dir, 'v1.1.0-light')).toMatchObject({ commit: second!.commit, tag: 'v1.1.0-light' })
    expect(await resolveRef(repo.dir, first!.commit)).toEqual({ commit: first!.commit, commitTime: first!.commitTime })
  })

  it('clones a local repository on another file system (hard links cannot cross it)', async (ctx) => {
    // /dev/shm is a tmpfs where Linux has one; the work directory is on the main disk.
    const other = await stat('/dev/shm').then(st => st.isDirectory() ? '/dev/shm' : undefined, () => undefined)
    if (other == null || (await stat(other)).dev === (await stat(work)).dev) {
      process.stdout.write('[skip] no second file system beside the work directory\n')
      ctx.skip()
      return
    }
    const far = await createFixtureRepo({ files: { 'a.txt': 'far\n' }, tag: 'v2.0.0' }, other)
    try {
      const dir = join(work, 'cross-device')
      const r = await checkout(far.dir, 'v2.0.0', dir)
      expect(r.commit).toBe(far.commits[0]!.commit)
      expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('far\n')
    } finally {
      await rm(far.dir, { recursive: true, force: true })
    }
  })

  it('throws SourceError for a missing tag or repository', async () => {
    await expect(resolveRef(repo.dir, 'v9.9.9')).rejects.toBeInstanceOf(SourceError)
    await expect(resolveRef(join(work, 'nope'), 'v1.0.0')).rejects.toBeInstanceOf(SourceError)
    await expect(resolveRef(repo.dir, '--upload-pack=x')).rejects.toBeInstanceOf(SourceError)
  })

  it('checks out the exact commit with normalised modes and no .git', async () => {
    const dir = join(work, 'co')
    const r = await checkout(repo.dir, 'v1.0.0', dir)
    expect(r.commit).toBe(repo.commits[0]!.commit)
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('one\n')
    expect((await stat(join(dir, 'bin/run'))).mode & 0o777).toBe(0o755)
    expect((await stat(join(dir, 'a.txt'))).mode & 0o777).toBe(0o644)
    await expect(stat(join(dir, '.git'))).rejects.toThrow()
  })

  it('fetches over the network (git daemon on loopback): tags shallowly, commits, and missing tags', async () => {
    const server = await serveGitRepos(work)
    try {
      const url = server.url(repo.dir)
      const [first, second] = repo.commits
      expect(await resolveRef(url, 'v1.0.0')).toEqual({ commit: first!.commit, commitTime: first!.commitTime, tag: 'v1.0.0' })
      expect(await resolveRef(url, second!.commit)).toMatchObject({ commit: second!.commit })
      await expect(resolveRef(url, 'v9.9.9')).rejects.toBeInstanceOf(SourceError)
      const dir = join(work, 'net-co')
      const r = await checkout(url, 'v1.1.0-light', dir)
      expect(r).toMatchObject({ commit: second!.commit, tag: 'v1.1.0-light' })
      expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('two\n')
    } finally {
      await server.close()
    }
  })

  describe('submodules', () => {
    let inner: FixtureRepo
    let sub: FixtureRepo
    let superproject: FixtureRepo
    beforeAll(async () => {
      // superproject -> sub -> inner, by relative URLs, with sub pinned behind its tip.
      inner = await createFixtureRepo({ files: { 'inner.txt': 'inner\n' } }, work)
      sub = await createFixtureRepo({ files: { 'sub.txt': 'pinned\n' }, submodules: { deep: `../${basename(inner.dir)}` } }, work)
      superproject = await createFixtureRepo({ files: { 'top.txt': 'top\n' }, submodules: { 'vendor/sub': `../${basename(sub.dir)}` } }, work)
      await sub.commit({ files: { 'sub.txt': 'later\n' } })
      await superproject.commit({ files: { 'top.txt': 'tagged\n' }, tag: 'v2.0.0' })
    })

    async function gitEntries (dir: string): Promise<string[]> {
      const entries = await readdir(dir, { recursive: true, withFileTypes: true })
      return entries.filter(e => e.name === '.git').map(e => join(e.parentPath, e.name))
    }

    it('checks out submodules recursively at the recorded commits, leaving no .git behind', async () => {
      const dir = join(work, 'co-sub')
      const r = await checkout(superproject.dir, 'v2.0.0', dir)
      expect(r.commit).toBe(superproject.commits[1]!.commit)
      expect(await readFile(join(dir, 'top.txt'), 'utf8')).toBe('tagged\n')
      expect(await readFile(join(dir, 'vendor/sub/sub.txt'), 'utf8')).toBe('pinned\n')
      expect(await readFile(join(dir, 'vendor/sub/deep/inner.txt'), 'utf8')).toBe('inner\n')
      expect(await gitEntries(dir)).toEqual([])
    })

    it('fetches submodules over the network by relative URL', async () => {
      const server = await serveGitRepos(work)
      try {
        const dir = join(work, 'net-co-sub')
        await checkout(server.url(superproject.dir), 'v2.0.0', dir)
        expect(await readFile(join(dir, 'vendor/sub/sub.txt'), 'utf8')).toBe('pinned\n')
        expect(await readFile(join(dir, 'vendor/sub/deep/inner.txt'), 'utf8')).toBe('inner\n')
        expect(await gitEntries(dir)).toEqual([])
      } finally {
        await server.close()
      }
    })

    it('refuses a remote repository whose submodule points at a path on this host', async () => {
      const sneaky = await createFixtureRepo({ files: { 'x.txt': 'x\n' }, submodules: { host: sub.dir }, tag: 'v1' }, work)
      const server = await serveGitRepos(work)
      try {
        await expect(checkout(server.url(sneaky.dir), 'v1', join(work, 'sneaky-co')))
          .rejects.toThrow(/cannot check out the submodules of .*transport 'file' not allowed/)
      } finally {
        await server.close()
      }
    })
  })

  it('refuses a repository in SHA-256 object format: claims name 40-hex commits', async () => {
    const sha256 = await createFixtureRepo({ files: { 'a.txt': 'one\n' }, tag: 'v1.0.0' }, work, { objectFormat: 'sha256' })
    expect(sha256.commits[0]!.commit).toMatch(/^[0-9a-f]{64}$/)
    await expect(resolveRef(sha256.dir, 'v1.0.0')).rejects.toThrow(/not a 40-hex commit id; repositories in SHA-256 object format/)
    await expect(checkout(sha256.dir, 'v1.0.0', join(work, 'co-sha256'))).rejects.toBeInstanceOf(SourceError)
  })

  it('accepts every tag name the wire accepts, up to 256 characters', async () => {
    const long = 'v1.2.3-' + 'x'.repeat(223)
    expect(long).toHaveLength(230)
    const tagged = await createFixtureRepo({ files: { 'a.txt': 'one\n' }, tag: long }, work)
    expect(await resolveRef(tagged.dir, long)).toMatchObject({ commit: tagged.commits[0]!.commit, tag: long })
    await expect(resolveRef(tagged.dir, 'x'.repeat(257))).rejects.toThrow(/not a tag name or commit id/)
  })

  it('refuses a tag that points elsewhere than the expected commit', async () => {
    await expect(checkout(repo.dir, 'v1.0.0', join(work, 'co2'), { expectedCommit: repo.commits[1]!.commit }))
      .rejects.toThrow(/points to commit .* not the expected/)
  })
})
