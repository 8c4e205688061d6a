import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { diffManifests, diffOciArchives, fileManifestOf, type FileChange, type LayerDiff as ImageDiffLayer } from '../../src/node/compare/index.js'
import { formatImageDiff } from '../../src/cli/commands/diff.js'
import { CAUSES, CAUSE_IDS } from '../../src/protocol/causes.js'
import { packageDrift, parseDpkgStatus } from '../../src/node/compare/dpkg.js'
import { textDiff } from '../../src/node/compare/text-diff.js'
import { applyFixes } from '../../src/node/compare/apply-fixes.js'
import { ruleById } from '../../src/audit/index.js'
import { readFileSync } from 'node:fs'
import { writeSyntheticOci, type SyntheticFile } from '../rebuilder/oci-builder.js'

const status = (foo: string): string => [
  'Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 13.8\n',
  `Package: libfoo1\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${foo}\n`,
  'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n'
].join('\n')

/** gzip with a chosen header mtime (RFC 1952: bytes 4..7, little-endian). */
function gz (text: string, mtime: number): Buffer {
  const b = Buffer.from(gzipSync(Buffer.from(text)))
  b.writeUInt32LE(mtime, 4)
  return b
}

/** A timestamp-based .pyc header (PEP 552) followed by some bytes. */
function pyc (mtime: number): Buffer {
  const b = Buffer.alloc(24)
  b.write('\xcb\r\r\n', 0, 'latin1')
  b.writeUInt32LE(0, 4)
  b.writeUInt32LE(mtime, 8)
  b.writeUInt32LE(100, 12)
  return b
}

/** A zip local file header whose first member has the given DOS time. */
function zip (time: number): Buffer {
  const b = Buffer.alloc(40)
  b.write('PK\x03\x04', 0, 'latin1')
  b.writeUInt16LE(time, 10)
  b.writeUInt16LE((45 << 9) | (1 << 5) | 1, 12)
  return b
}

const fontCache = (n: number): Buffer => Buffer.concat([Buffer.from([0x04, 0xfc, 0x02, 0xfc]), Buffer.alloc(60, n)])

function packagesLayer (side: 'a' | 'b'): SyntheticFile[] {
  const v = side === 'a' ? 1 : 2
  return [
    { path: 'etc/machine-id', content: side === 'a' ? '0123456789abcdef0123456789abcdef\n' : 'fedcba9876543210fedcba9876543210\n' },
    { path: 'var/lib/dbus/machine-id', content: side === 'a' ? '0123456789abcdef0123456789abcdef\n' : 'fedcba9876543210fedcba9876543210\n' },
    { path: 'var/cache/fontconfig/abc-le64.cache-9', content: fontCache(v) },
    { path: 'var/cache/fontconfig/def-le64.cache-9', content: fontCache(v + 10) },
    { path: 'var/cache/ldconfig/aux-cache', content: Buffer.from([0, 1, 2, v]) },
    { path: 'var/log/dpkg.log', content: `2025-01-0${v} 10:00:00 startup archives unpack\n2025-01-0${v} 10:00:01 install libfoo1:amd64 <none> 1.${v}\n` },
    { path: 'var/lib/dpkg/status', content: status(`1.${v}`) },
    { path: 'var/lib/dpkg/status-old', content: status(`1.${v - 1}`) },
    { path: 'var/lib/dpkg/info/libfoo1:amd64.list', content: '/.\n/usr/lib/libfoo.so.1\n' },
    { path: 'usr/lib/libfoo.so.1', content: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, v]) },
    { path: 'var/lib/apt/lists/deb.debian.org_dists_trixie_InRelease', content: `Date: 0${v}\n` }
  ]
}

function formatsLayer (side: 'a' | 'b'): SyntheticFile[] {
  const a = side === 'a'
  return [
    { path: 'usr/share/doc/x/changelog.gz', content: gz('same text\n', a ? 1_700_000_000 : 1_700_000_100) },
    { path: 'usr/lib/python3/x/__pycache__/m.cpython-313.pyc', content: pyc(a ? 1_700_000_000 : 1_700_000_500) },
    { path: 'opt/app/lib.jar', content: zip(a ? 0x5000 : 0x5100) },
    { path: 'opt/app/version.txt', content: `name=app\nbuilt=${a ? '2025-01-01T10:00:00Z' : '2025-01-02T11:30:00Z'}\nrev=1\n` },
    { path: 'opt/app/notes.txt', content: `line one\n${a ? 'alpha' : 'beta'}\n` },
    { path: 'opt/app/blob.bin', content: Buffer.from([0, 1, 2, 3, a ? 4 : 5, 0, 0]) },
    { path: 'opt/app/current', type: 'symlink', linkname: a ? 'v1' : 'v2' },
    { path: 'opt/app/stamp', content: 'x', mtime: a ? 1_700_000_000 : 1_800_000_000 },
    { path: 'opt/app/owned', content: 'x', uid: a ? 100 : 101 },
    { path: 'opt/app/moded', content: 'x', mode: a ? 0o644 : 0o600 },
    ...(a ? [] : [{ path: 'opt/app/tmp-123', content: 'left' }])
  ]
}

const same = { files: [{ path: 'README', content: 'same\n' }], createdBy: 'COPY README / # buildkit' }

describe('diff: causes from evidence (synthetic archives)', () => {
  let dir: string
  let changes: Map<string, FileChange>
  let d: Awaited<ReturnType<typeof diffOciArchives>>
  let archives: [string, string]
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'causes-test-'))
    const write = async (side: 'a' | 'b'): Promise<string> => {
      const p = join(dir, `${side}.tar`)
      await writeSyntheticOci(p, [
        { files: packagesLayer(side), createdBy: 'RUN apt-get install -y libfoo1 # buildkit' },
        same,
        { files: formatsLayer(side), createdBy: 'RUN make install # buildkit' }
      ])
      return p
    }
    archives = [await write('a'), await write('b')]
    d = await diffOciArchives(archives[0], archives[1])
    changes = new Map(d.layers.flatMap(l => l.changes.map(c => [c.path, c])))
  })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('reports every differing layer, not only the first', () => {
    expect(d.layers.map(l => l.index)).toEqual([0, 2])
  })

  it.each([
    ['etc/machine-id', 'machine-id', /random 128-bit/],
    ['var/lib/dbus/machine-id', 'machine-id', undefined],
    ['var/cache/fontconfig/abc-le64.cache-9', 'fontconfig-cache', /magic/],
    ['var/cache/ldconfig/aux-cache', 'ldconfig-aux-cache', undefined],
    ['var/log/dpkg.log', 'package-logs', undefined],
    ['var/lib/dpkg/status-old', 'package-backups', undefined],
    ['var/lib/dpkg/status', 'package-drift', /libfoo1:amd64 1\.1 → 1\.2/],
    ['usr/lib/libfoo.so.1', 'package-drift', undefined],
    ['var/lib/apt/lists/deb.debian.org_dists_trixie_InRelease', 'apt-lists', undefined],
    ['usr/share/doc/x/changelog.gz', 'gzip-header', /gzip header mtime 2023-11-14T22:13:20Z vs 2023-11-14T22:15:00Z/],
    ['usr/lib/python3/x/__pycache__/m.cpython-313.pyc', 'python-bytecode', /timestamp-based \.pyc, source mtime 2023-11-14T22:13:20Z vs 2023-11-14T22:21:40Z/],
    ['opt/app/lib.jar', 'zip-times', /first zip member time/],
    ['opt/app/version.txt', 'embedded-timestamp', /date or time/],
    ['opt/app/notes.txt', 'unknown', /text content differs/],
    ['opt/app/blob.bin', 'unknown', undefined],
    ['opt/app/current', 'symlink-target', /v1 vs v2/],
    ['opt/app/stamp', 'mtime', /mtime 2023-11-14T22:13:20Z vs 2027-01-15T08:00:00Z \(SOURCE_DATE_EPOCH 2023-11-14T22:13:20Z\)/],
    ['opt/app/owned', 'owner', undefined],
    ['opt/app/moded', 'mode', undefined],
    ['opt/app/tmp-123', 'file-set', /only in b/]
  ])('%s: %s', (path, id, detail) => {
    const c = changes.get(path)
    expect(c?.cause?.id).toBe(id)
    expect(c?.cause?.fix).toBe(CAUSES[id as keyof typeof CAUSES].fix)
    if (detail != null) expect(c?.detail).toMatch(detail)
  })

  it('shows a bounded unified diff of small text files', () => {
    expect(changes.get('opt/app/version.txt')?.diff).toBe([
      '--- a/opt/app/version.txt',
      '+++ b/opt/app/version.txt',
      '@@ -1,3 +1,3 @@',
      ' name=app',
      '-built=2025-01-01T10:00:00Z',
      '+built=2025-01-02T11:30:00Z',
      ' rev=1'
    ].join('\n'))
    expect(changes.get('var/log/dpkg.log')?.diff).toContain('-2025-01-01 10:00:00 startup archives unpack')
    // Binary files get no text diff.
    expect(changes.get('opt/app/blob.bin')?.diff).toBeUndefined()
  })

  it('lists the packages that drifted, and groups paths by cause, most first, with the fix once', () => {
    expect(d.layers[0]?.packages).toEqual([{ name: 'libfoo1:amd64', a: '1.1', b: '1.2' }])
    expect(d.causes.find(g => g.cause.id === 'package-drift')).toMatchObject({ count: 2, layers: [0], paths: ['usr/lib/libfoo.so.1', 'var/lib/dpkg/status'] })
    const counts = d.causes.map(g => g.count)
    expect([...counts].sort((x, y) => y - x)).toEqual(counts)
    expect(d.paths.total).toBe(d.causes.reduce((n, g) => n + g.count, 0))
    expect(d.paths.explained).toBe(d.paths.total - 2)
    const text = formatImageDiff(d)
    expect(text.split('fix: ' + CAUSES['machine-id'].fix)).toHaveLength(2)
    expect(text).toContain('package libfoo1:amd64 1.1 → 1.2')
  })

  it('--json carries the cause of every path, with its audit rule where one predicts it', () => {
    const json = JSON.parse(JSON.stringify(d)) as typeof d
    const all = json.layers.flatMap(l => l.changes)
    expect(all.every(c => c.cause != null && typeof c.cause.summary === 'string' && typeof c.cause.fix === 'string')).toBe(true)
    expect(all.find(c => c.path === 'var/log/dpkg.log')?.cause).toEqual({ id: 'package-logs', summary: CAUSES['package-logs'].summary, fix: CAUSES['package-logs'].fix, auditRule: 'NR052-logs-left' })
  })

  it('from file manifests alone (no file bytes), names the causes that paths and metadata show', async () => {
    const [ma, mb] = await Promise.all([fileManifestOf(archives[0]), fileManifestOf(archives[1])])
    expect(ma.layers[0]?.entries.find(e => e.path === 'etc/machine-id')).toMatchObject({ type: 'file', size: 33, mode: 0o644, uid: 0, gid: 0 })
    const m = diffManifests(ma, mb)
    expect(m.layers.map(l => l.index)).toEqual([0, 2])
    const cause = new Map(m.layers.flatMap(l => l.changes.map(c => [c.path, c.cause?.id])))
    expect(cause.get('etc/machine-id')).toBe('machine-id')
    expect(cause.get('var/log/dpkg.log')).toBe('package-logs')
    expect(cause.get('opt/app/current')).toBe('symlink-target')
    // The gzip header is in the bytes, which a manifest does not carry.
    expect(cause.get('usr/share/doc/x/changelog.gz')).toBe('unknown')
    expect(m.paths.total).toBe(d.paths.total)
  })

  it('says first when the images come from different SOURCE_DATE_EPOCHs', async () => {
    const p = async (name: string, created: string): Promise<string> => {
      const path = join(dir, `${name}.tar`)
      await writeSyntheticOci(path, [same], { created })
      return path
    }
    const e = await diffOciArchives(await p('e1', '2024-01-01T00:00:00Z'), await p('e2', '2024-02-01T00:00:00Z'))
    expect(e.origins?.differences).toEqual(['different SOURCE_DATE_EPOCH: 1704067200 vs 1706745600'])
    expect(formatImageDiff(e).split('\n')[0]).toBe('NOTE      different SOURCE_DATE_EPOCH: 1704067200 vs 1706745600')
  })
})

describe('cause catalogue, dpkg and text diff units', () => {
  it('every cause has an id equal to its key, a summary, a reason and a fix', () => {
    for (const id of CAUSE_IDS) {
      expect(CAUSES[id].id).toBe(id)
      expect(CAUSES[id].summary.length).toBeGreaterThan(10)
      expect(CAUSES[id].why.length).toBeGreaterThan(10)
      expect(CAUSES[id].fix.length).toBeGreaterThan(10)
    }
  })

  it('links each cause to an existing audit rule, and the rule and docs back to the cause', () => {
    const audit = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8')
    const causes = readFileSync(new URL('../../docs/causes.md', import.meta.url), 'utf8')
    for (const id of CAUSE_IDS) {
      expect(causes).toContain(`### \`${id}\``)
      const rule = CAUSES[id].auditRule
      if (rule == null) continue
      expect(ruleById(rule), `${id} → ${rule}`).toBeDefined()
      expect(audit).toContain(`| \`${id}\` | \`${rule}\` |`)
    }
    // The docs name a rule only where the catalogue does, so no link points at a rule that does not exist.
    for (const [, rule] of causes.matchAll(/\*\*Audit rule:\*\* \[`([^`]+)`\]/g)) {
      expect(ruleById(rule ?? ''), `docs/causes.md links ${rule}`).toBeDefined()
    }
  })

  it('applies the removals to the RUN that made the layer, and leaves other causes to be fixed by hand', () => {
    const dockerfile = [
      'FROM debian',
      '# install',
      'RUN set -eux; \\',
      '    apt-get update; \\',
      '    # a comment BuildKit drops',
      '    apt-get install -y dbus fonts-noto; \\',
      '    rm -rf /var/lib/apt/lists/*',
      'RUN date > /built',
      ''
    ].join('\n')
    const layer = (index: number, step: string, causeCounts: Record<string, number>): ImageDiffLayer => ({ index, step, changes: [], omitted: 0, causeCounts, verdict: 'content' })
    const fixed = applyFixes(dockerfile, {
      layers: [
        layer(1, 'RUN |1 X=1 /bin/sh -c set -eux;     apt-get update;     apt-get install -y dbus fonts-noto;     rm -rf /var/lib/apt/lists/* # buildkit', { 'machine-id': 2, 'fontconfig-cache': 5 }),
        layer(2, 'RUN /bin/sh -c date > /built # buildkit', { 'embedded-timestamp': 1 })
      ]
    } as unknown as Parameters<typeof applyFixes>[1])
    expect(fixed.dockerfile.split('\n').slice(6, 8)).toEqual([
      '    rm -rf /var/lib/apt/lists/* && \\',
      '    rm -rf /etc/machine-id /var/lib/dbus/machine-id /var/cache/fontconfig/*'
    ])
    expect(fixed.applied).toEqual([{ layer: 1, line: 7, causes: ['machine-id', 'fontconfig-cache'], added: 'rm -rf /etc/machine-id /var/lib/dbus/machine-id /var/cache/fontconfig/*' }])
    expect(fixed.manual).toEqual([{ layer: 2, cause: 'embedded-timestamp' }])
  })

  it('reads installed packages and names the drift', () => {
    const a = parseDpkgStatus(status('1.1'))
    expect([...a]).toEqual([['base-files:amd64', '13.8'], ['libfoo1:amd64', '1.1']])
    expect(packageDrift(a, parseDpkgStatus(status('1.2')))).toEqual([{ name: 'libfoo1:amd64', a: '1.1', b: '1.2' }])
  })

  it('bounds the text diff of files where every line moved', () => {
    const lines = (p: string): Buffer => Buffer.from(Array.from({ length: 5000 }, (_, i) => `${p} ${i}`).join('\n'))
    const out = textDiff('var/log/x.log', lines('a'), lines('b')) ?? ''
    expect(out.split('\n').length).toBeLessThan(40)
    expect(out).toMatch(/more diff line\(s\)$/)
  })
})
