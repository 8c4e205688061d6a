import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { applyFixes, diffManifests, diffOciArchives, fileManifestOf, type FileChange, type ImageDiff } from '../../src/node/compare/index.js'
import { formatImageDiff } from '../../src/cli/commands/diff.js'
import { CAUSES } from '../../src/protocol/causes.js'
import { textDiff } from '../../src/node/compare/text-diff.js'
import { writeSyntheticOci, type SyntheticFile } from '../rebuilder/oci-builder.js'
import { runCli } from '../rebuilder/cli-runner.js'

const T0 = 1_733_580_000
const httpDate = (s: number): string => new Date(s * 1000).toUTCString()

/** What npm, pip, Go, cargo ... leave behind, with the time of the build `t` in it. */
function cachesLayer (side: 'a' | 'b'): SyntheticFile[] {
  const t = side === 'a' ? T0 : T0 + 93
  const index = (key: string): string => `${side === 'a' ? 'aa' : 'bb'}11\t${JSON.stringify({ key, integrity: 'sha512-x', time: t * 1000 + 123, size: 10, metadata: { resHeaders: { date: httpDate(t) } } })}\n`
  return [
    { path: 'root/.npm/_cacache/index-v5/1f/2e/abc', content: index('make-fetch-happen:request-cache:https://registry.npmjs.org/x/-/x-1.0.0.tgz') },
    // npm names its debug log after the time of the run: one name per build.
    { path: `root/.npm/_logs/${new Date(t * 1000).toISOString().replace(/:/g, '_')}-debug-0.log`, content: `0 verbose cli ${t}\n` },
    { path: 'usr/local/share/.cache/yarn/v6/.tmp/abc/.yarn-metadata.json', content: `{"fetched":${t}}` },
    { path: 'root/.local/share/pnpm/store/v3/metadata/registry.npmjs.org/x.json', content: `{"cachedAt":${t * 1000}}` },
    { path: 'app/node_modules/.modules.yaml', content: `prunedAt: ${httpDate(t)}\n` },
    { path: 'root/.cache/pip/selfcheck/abc.json', content: `{"last_check":"${new Date(t * 1000).toISOString()}"}` },
    { path: 'root/.cache/pypoetry/cache/repositories/PyPI/_http/x', content: Buffer.from([0, 1, side === 'a' ? 2 : 3]) },
    { path: 'root/.cache/go-build/trim.txt', content: `${t}\n` },
    { path: 'root/.config/go/telemetry/local/go@go1.24-linux-amd64-2024-12-07.v1.count', content: Buffer.from([side === 'a' ? 1 : 2]) },
    { path: 'usr/local/cargo/registry/index/x/.cache/se/rd/serde', content: Buffer.from([3, side === 'a' ? 1 : 2]) },
    { path: 'root/.cargo/.global-cache', content: Buffer.from([0x53, 0x51, side === 'a' ? 1 : 2]) },
    { path: 'app/target/release/.fingerprint/app-1234/bin-app', content: side === 'a' ? 'aa' : 'bb' },
    { path: 'app/target/x86_64-unknown-linux-gnu/release/build/ring-1/output', content: side === 'a' ? 'a' : 'b' },
    { path: 'root/.m2/repository/org/x/x/1.0/_remote.repositories', content: `#${httpDate(t)}\nx-1.0.jar>central=\n` },
    { path: 'root/.gradle/caches/8.5/file-changes/last-build.bin', content: Buffer.from([side === 'a' ? 1 : 2]) },
    { path: 'app/.eslintcache', content: `[{"a":"1"},{"size":10,"mtime":${t * 1000}}]` },
    { path: 'app/node_modules/.cache/babel-loader/abc.json', content: side === 'a' ? '{"x":1}' : '{"x":2}' },
    { path: 'app/node_modules/.cache/webpack/default-production/0.pack', content: Buffer.from([side === 'a' ? 1 : 2, 0]) },
    { path: 'app/tsconfig.tsbuildinfo', content: `{"program":{"fileInfos":["${side}"]}}` }
  ]
}

/** Text whose only difference lies far past where a display would cut a line. */
function textsLayer (side: 'a' | 'b'): SyntheticFile[] {
  const a = side === 'a'
  const pad = 'x'.repeat(5000)
  const big = (stamp: string | number): string => JSON.stringify({ name: 'app', deps: Array.from({ length: 6000 }, (_, i) => ({ name: `dep${i}`, version: `1.${i}.0` })), build: { time: stamp, host: 'builder' }, fetchedAt: a ? T0 * 1000 : T0 * 1000 + 5 })
  return [
    { path: 'opt/app/ms.log', content: `${pad} done at ${a ? '1733580000123' : '1733580093456'}\n` },
    { path: 'opt/app/us.log', content: `${pad} t=${a ? '1733580000123456' : '1733580093456789'}\n` },
    { path: 'opt/app/ns.log', content: `${pad} t=${a ? '1733580000123456789' : '1733580093456789012'}\n` },
    { path: 'opt/app/http.txt', content: `${pad} Date: ${httpDate(a ? T0 : T0 + 93)}\n` },
    { path: 'opt/app/iso.txt', content: `${pad} at ${a ? '2026-12-07T15:15:49.123Z' : '2026-12-07T15:17:22.456Z'} ok\n` },
    { path: 'opt/app/lookalike.txt', content: `${pad} id=${a ? '17335800001234' : '17335800931234'}\n` },
    // One-line JSON of a few hundred KB: compared by keys.
    { path: 'opt/app/build.json', content: big(a ? '2026-12-07T15:15:49Z' : '2026-12-07T15:17:22Z') },
    { path: 'opt/app/state.json', content: JSON.stringify({ deps: Array.from({ length: 6000 }, (_, i) => `dep${i}`), owner: a ? 'alice' : 'bob' }) },
    { path: 'opt/app/order.json', content: a ? '{"x":1,"y":2}' : '{"y":2,"x":1}' }
  ]
}

describe('diff: ecosystem caches, deep recognition, no silent truncation (synthetic archives)', () => {
  let dir: string
  let archives: [string, string]
  let d: ImageDiff
  let changes: Map<string, FileChange>
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'causes-eco-'))
    const write = async (side: 'a' | 'b'): Promise<string> => {
      const p = join(dir, `${side}.tar`)
      await writeSyntheticOci(p, [
        { files: cachesLayer(side), createdBy: 'RUN npm ci && go build ./... # buildkit' },
        { files: textsLayer(side), createdBy: 'RUN make # buildkit' },
        // 250 differing text files of 70 KiB, each with a time: past the first read's keep and past any count of files.
        { files: Array.from({ length: 250 }, (_, i) => ({ path: `srv/stamps/${String(i).padStart(3, '0')}.txt`, content: `${'y'.repeat(70 * 1024)}\nbuilt ${side === 'a' ? T0 : T0 + 60}\n` })), createdBy: 'RUN gen # buildkit' }
      ])
      return p
    }
    archives = [await write('a'), await write('b')]
    d = await diffOciArchives(archives[0], archives[1])
    changes = new Map(d.layers.flatMap(l => l.changes.map(c => [c.path, c])))
  }, 120_000)
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it.each([
    ['root/.npm/_cacache/index-v5/1f/2e/abc', 'npm-cache'],
    [`root/.npm/_logs/${new Date(T0 * 1000).toISOString().replace(/:/g, '_')}-debug-0.log`, 'npm-cache'],
    ['usr/local/share/.cache/yarn/v6/.tmp/abc/.yarn-metadata.json', 'yarn-cache'],
    ['root/.local/share/pnpm/store/v3/metadata/registry.npmjs.org/x.json', 'pnpm-store'],
    ['app/node_modules/.modules.yaml', 'pnpm-store'],
    ['root/.cache/pip/selfcheck/abc.json', 'pip-cache'],
    ['root/.cache/pypoetry/cache/repositories/PyPI/_http/x', 'poetry-cache'],
    ['root/.cache/go-build/trim.txt', 'go-cache'],
    ['root/.config/go/telemetry/local/go@go1.24-linux-amd64-2024-12-07.v1.count', 'go-cache'],
    ['usr/local/cargo/registry/index/x/.cache/se/rd/serde', 'cargo-cache'],
    ['root/.cargo/.global-cache', 'cargo-cache'],
    ['app/target/release/.fingerprint/app-1234/bin-app', 'cargo-cache'],
    ['app/target/x86_64-unknown-linux-gnu/release/build/ring-1/output', 'cargo-cache'],
    ['root/.m2/repository/org/x/x/1.0/_remote.repositories', 'maven-cache'],
    ['root/.gradle/caches/8.5/file-changes/last-build.bin', 'gradle-cache'],
    ['app/.eslintcache', 'eslint-cache'],
    ['app/node_modules/.cache/babel-loader/abc.json', 'babel-cache'],
    ['app/node_modules/.cache/webpack/default-production/0.pack', 'webpack-cache'],
    ['app/tsconfig.tsbuildinfo', 'tsbuildinfo']
  ])('%s: %s, with its audit rule', (path, id) => {
    const c = changes.get(path)
    expect(c?.cause?.id).toBe(id)
    expect(c?.cause?.fix).toBe(CAUSES[id as keyof typeof CAUSES].fix)
    expect(c?.cause?.auditRule).toMatch(/^NR06\d-/)
  })

  it.each([
    ['opt/app/ms.log', 'Unix time in milliseconds'],
    ['opt/app/us.log', 'Unix time in microseconds'],
    ['opt/app/ns.log', 'Unix time in nanoseconds'],
    ['opt/app/http.txt', 'HTTP date header'],
    ['opt/app/iso.txt', 'ISO 8601 time']
  ])('%s: a time 5000 characters into a line is found (%s)', (path, form) => {
    const c = changes.get(path)
    expect(c?.cause?.id).toBe('embedded-timestamp')
    expect(c?.detail).toBe(`every differing line holds a date or time (${form})`)
  })

  it('a run of digits longer than a Unix time is not taken for one', () => {
    expect(changes.get('opt/app/lookalike.txt')?.cause?.id).toBe('unknown')
  })

  it('shows a long line around its first difference, not its start', () => {
    const diff = changes.get('opt/app/ms.log')?.diff ?? ''
    expect(diff).toContain('done at 1733580000123')
    expect(diff).toContain('done at 1733580093456')
    for (const line of diff.split('\n')) expect(line.length).toBeLessThanOrEqual(203)
    const out = textDiff('f', Buffer.from(`${'q'.repeat(1000)}A${'r'.repeat(1000)}`), Buffer.from(`${'q'.repeat(1000)}B${'r'.repeat(1000)}`)) ?? ''
    expect(out).toMatch(/^-…q{60}Ar{139}…$/m)
    expect(out).toMatch(/^\+…q{60}Br{139}…$/m)
  })

  it('compares one-line JSON of hundreds of KB by its keys', () => {
    const build = changes.get('opt/app/build.json')
    expect(build?.a?.size).toBeGreaterThan(200_000)
    expect(build?.cause?.id).toBe('embedded-timestamp')
    expect(build?.detail).toBe('JSON differs at 2 key(s), each a date or time (ISO 8601 time, Unix time in milliseconds): build.time, fetchedAt')
    expect(changes.get('opt/app/state.json')?.detail).toBe('JSON differs at 1 key(s): owner')
    expect(changes.get('opt/app/state.json')?.cause?.id).toBe('unknown')
    expect(changes.get('opt/app/order.json')?.detail).toBe('the same JSON values, in another key order or spacing')
  })

  it('judges every differing text file on its content, however many there are', () => {
    const stamps = d.layers.find(l => l.index === 2)
    expect(stamps?.causeCounts).toEqual({ 'embedded-timestamp': 250 })
  })

  it('--max-paths bounds the listing; per-cause counts of what was left out are exact and add up', async () => {
    const small = await diffOciArchives(archives[0], archives[1], { maxPaths: 30 })
    expect(small.paths).toMatchObject({ total: d.paths.total, listed: 30, omitted: d.paths.total - 30 })
    expect(d.paths).toMatchObject({ listed: d.paths.total, omitted: 0 })
    let omitted = 0
    for (const l of small.layers) {
      const full = d.layers.find(x => x.index === l.index)
      // The same causes as with everything listed: nothing is guessed for the paths left out.
      expect(l.causeCounts).toEqual(full?.causeCounts)
      const sum = Object.values(l.causeCounts).reduce((n, x) => n + x, 0)
      expect(sum).toBe(l.changes.length + l.omitted)
      const left = Object.values(l.omittedCauses ?? {}).reduce((n, x) => n + x, 0)
      expect(left).toBe(l.omitted)
      for (const [id, n] of Object.entries(l.causeCounts)) {
        expect(l.changes.filter(c => c.cause?.id === id).length + (l.omittedCauses?.[id] ?? 0)).toBe(n)
      }
      omitted += l.omitted
    }
    expect(omitted).toBe(small.paths.omitted)
    expect(small.causes.reduce((n, g) => n + g.count, 0)).toBe(small.paths.total)
    // Round the causes: the first layer keeps an example of each of its causes.
    const first = small.layers[0]
    expect(new Set(first?.changes.map(c => c.cause?.id))).toEqual(new Set(Object.keys(first?.causeCounts ?? {})))
  })

  it('text output groups each layer by cause with a few paths each', async () => {
    const small = await diffOciArchives(archives[0], archives[1], { maxPaths: 240 })
    const text = formatImageDiff(small)
    expect(text).toContain('  embedded-timestamp  250 path(s)')
    expect(text).toMatch(/\.\.\. and 247 more \(\d+ in --json; \d+ past --max-paths, counted only\)/)
    expect(text).toContain('  cargo-cache  4 path(s)')
    expect(text).toContain('    ... and 1 more (all in --json)')
  })

  it('names the caches from file manifests alone, and diff --fix removes them in the RUN that left them', async () => {
    const m = diffManifests(await fileManifestOf(archives[0]), await fileManifestOf(archives[1]))
    const cause = new Map(m.layers.flatMap(l => l.changes.map(c => [c.path, c.cause?.id])))
    expect(cause.get('root/.npm/_cacache/index-v5/1f/2e/abc')).toBe('npm-cache')
    expect(cause.get('app/target/release/.fingerprint/app-1234/bin-app')).toBe('cargo-cache')
    const fixed = applyFixes('FROM debian\nRUN npm ci && go build ./...\nRUN make\n', d)
    expect(fixed.dockerfile.split('\n')[2]).toMatch(/^ {4}rm -rf .*\$HOME\/\.npm /)
    expect(fixed.dockerfile).toContain('$HOME/.cache/go-build')
    expect(fixed.dockerfile).toContain('target/*/.fingerprint')
    expect(fixed.applied[0]?.causes).toEqual(expect.arrayContaining(['npm-cache', 'go-cache', 'cargo-cache', 'pip-cache']))
  })

  it('diff --fix removes the __pycache__ directories below where the layer\'s differing bytecode lies, and no higher', () => {
    const pyc = (path: string): FileChange => ({ path, kinds: ['content'], cause: { id: 'python-bytecode', summary: '', fix: '' } })
    const layer = { index: 1, step: 'RUN /bin/sh -c pip install --no-index . # buildkit', changes: [pyc('opt/venv/lib/python3.13/site-packages/pip/__pycache__/a.pyc'), pyc('opt/venv/lib/python3.13/site-packages/pip/__pycache__/b.pyc'), pyc('opt/venv/lib/python3.13/site-packages/hello/__pycache__/c.pyc')], omitted: 0, causeCounts: { 'python-bytecode': 3 }, verdict: 'content' }
    const fixed = applyFixes('FROM debian\nRUN pip install --no-index .\n', { layers: [layer] } as unknown as ImageDiff)
    expect(fixed.applied[0]?.added).toBe('find /opt/venv/lib/python3.13/site-packages -name __pycache__ -prune -exec rm -rf {} +')
    // Bytecode spread over the whole file system: no find from / (it would remove the lower layers' bytecode too).
    const wide = applyFixes('FROM debian\nRUN pip install --no-index .\n', { layers: [{ ...layer, changes: [pyc('usr/lib/python3/x/__pycache__/a.pyc'), pyc('opt/venv/__pycache__/b.pyc')] }] } as unknown as ImageDiff)
    expect(wide.manual).toEqual([{ layer: 1, cause: 'python-bytecode' }])
    // Past --max-paths the directories are not all known: left to be fixed by hand.
    const partial = applyFixes('FROM debian\nRUN pip install --no-index .\n', { layers: [{ ...layer, omitted: 5 }] } as unknown as ImageDiff)
    expect(partial.applied).toEqual([])
    expect(partial.manual).toEqual([{ layer: 1, cause: 'python-bytecode' }])
  })

  it('the CLI takes --max-paths and rejects a value that is not a count', async () => {
    const ok = await runCli(['diff', '--json', '--max-paths', '5', archives[0], archives[1]])
    expect(ok.code).toBe(1)
    const json = JSON.parse(ok.stdout) as ImageDiff
    expect(json.paths.listed).toBe(5)
    expect(json.paths.total).toBe(d.paths.total)
    const bad = await runCli(['diff', '--max-paths', 'lots', archives[0], archives[1]])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/--max-paths.*must be a whole number of paths/)
  }, 60_000)
})
