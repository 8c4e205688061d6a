import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OciArchiveError, readOciArchive } from '../../src/node/oci/index.js'
import { diffOciArchives } from '../../src/node/compare/index.js'
import { writeSyntheticOci, type SyntheticFile } from '../rebuilder/oci-builder.js'

const base: SyntheticFile[] = [
  { path: 'etc/', type: 'directory' },
  { path: 'etc/app.conf', content: 'a=1\n' },
  { path: 'bin/tool', content: 'tool', mode: 0o755 },
  { path: 'bin/alias', type: 'symlink', linkname: 'tool' }
]
const first = { files: [{ path: 'README', content: 'same\n' }], createdBy: 'COPY README / # buildkit' }
const step = 'RUN make install # buildkit'

describe('OCI archive reading and diff (synthetic archives)', () => {
  let dir: string
  const archive = async (name: string, files: SyntheticFile[], created?: string): Promise<string> => {
    const path = join(dir, `${name}.tar`)
    await writeSyntheticOci(path, [first, { files, createdBy: step }], created != null ? { created } : {})
    return path
  }
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'diff-test-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reads digests, platform, diffIDs and the step of each layer', async () => {
    const info = await readOciArchive(await archive('read', base))
    expect(info.indexDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(info.images).toHaveLength(1)
    expect(info.images[0]!.platform).toBe('linux/amd64')
    expect(info.images[0]!.layers.map(l => l.createdBy)).toEqual(['COPY README / # buildkit', step])
    expect(info.images[0]!.diffIds).toHaveLength(2)
  })

  it('identical archives are identical', async () => {
    const d = await diffOciArchives(await archive('same-a', base), await archive('same-b', base))
    expect(d.identical).toBe(true)
    expect(d.verdict).toBe('identical')
  })

  it('only mtimes differ: timestamps', async () => {
    const d = await diffOciArchives(await archive('t-a', base), await archive('t-b', base.map(f => f.path === 'etc/app.conf' ? { ...f, mtime: 1_800_000_000 } : f)))
    expect(d.layers).toHaveLength(1)
    expect(d.layers[0]!.index).toBe(1)
    expect(d.layers[0]!.step).toBe(step)
    expect(d.layers[0]!.changes).toEqual([expect.objectContaining({ path: 'etc/app.conf', kinds: ['mtime'] })])
    expect(d.verdict).toBe('timestamps')
  })

  it('same files in another order: file-order', async () => {
    const d = await diffOciArchives(await archive('o-a', base), await archive('o-b', [base[0]!, base[2]!, base[1]!, base[3]!]))
    expect(d.layers[0]!.verdict).toBe('file-order')
    expect(d.layers[0]!.changes.every(c => c.kinds.length === 1 && c.kinds[0] === 'order')).toBe(true)
    expect(d.verdict).toBe('file-order')
  })

  it('mode and owner: metadata; added, removed and link targets: content', async () => {
    const meta = await diffOciArchives(await archive('m-a', base), await archive('m-b', base.map(f => f.path === 'bin/tool' ? { ...f, mode: 0o775, uid: 1000 } : f)))
    expect(meta.layers[0]!.changes[0]).toMatchObject({ path: 'bin/tool', kinds: ['mode', 'owner'] })
    expect(meta.verdict).toBe('metadata')

    const changed = [...base.filter(f => f.path !== 'etc/app.conf').map(f => f.path === 'bin/alias' ? { ...f, linkname: 'other' } : f), { path: 'etc/new', content: 'x' }]
    const content = await diffOciArchives(await archive('c-a', base), await archive('c-b', changed))
    const kinds = Object.fromEntries(content.layers[0]!.changes.map(c => [c.path, c.kinds]))
    expect(kinds['etc/app.conf']).toEqual(['removed'])
    expect(kinds['etc/new']).toEqual(['added'])
    expect(kinds['bin/alias']).toEqual(['link'])
    expect(content.verdict).toBe('content')
  })

  it('config-only differences name the fields', async () => {
    const d = await diffOciArchives(await archive('cfg-a', base), await archive('cfg-b', base, '2024-01-01T00:00:00Z'))
    expect(d.layers).toEqual([])
    expect(d.config?.fields).toEqual(['created', 'history[0].created', 'history[1].created'])
    expect(d.verdict).toBe('timestamps')
  })

  it('refuses what is not an OCI layout, and a blob whose content does not match its name', async () => {
    const junk = join(dir, 'junk.tar')
    await writeFile(junk, 'not a tar at all')
    await expect(readOciArchive(junk)).rejects.toBeInstanceOf(OciArchiveError)
    await expect(readOciArchive(join(dir, 'missing.tar'))).rejects.toBeInstanceOf(OciArchiveError)
    // Flip one byte of a blob's content (the README text): its digest no longer matches its name.
    const good = await archive('tamper', base)
    const bytes = Buffer.from(await import('node:fs/promises').then(async fs => await fs.readFile(good)))
    const i = bytes.indexOf(Buffer.from('"created_by":"RUN make'))
    expect(i).toBeGreaterThan(0)
    bytes[i + 20] = 'X'.charCodeAt(0)
    const tampered = join(dir, 'tampered.tar')
    await writeFile(tampered, bytes)
    await expect(readOciArchive(tampered)).rejects.toThrow(/has digest/)
  })
})
