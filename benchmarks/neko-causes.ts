/**
 * Worked example on a real release: Neko's runtime stage (`runtime/Dockerfile` of
 * m1k1o/neko at v3.1.5, `FROM $BASE_IMAGE`), rebuilt twice with `neko-rebuilder rebuild` on a
 * local Debian base, compared with `diff`; the fixes `diff --fix` writes are committed to a
 * copy of the checkout, which is rebuilt twice more and compared again. Prints the share of
 * differing paths with a specific cause (target >= 90%) and whether the fixed rebuilds are
 * identical. Takes 15-30 minutes on two cores; not part of `npm test`.
 *
 *   npm run example:neko-causes -- --neko /path/to/neko-checkout [--ref v3.1.5] [--base IMAGE] [--keep DIR]
 *
 * The Neko checkout is the user's (a clone of https://github.com/m1k1o/neko); the base is made
 * with `mmdebstrap --variant=minbase trixie` and `docker import` unless --base names one.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ImageDiff } from '../src/node/compare/index.js'
import { arg, BASE_EPOCH, debianBase, diff as diffOf, must, rebuild as rebuildOf, stopwatch } from './example-lib.js'

const neko = arg('--neko')
const ref = arg('--ref') ?? 'v3.1.5'
if (neko == null) {
  console.error('usage: npm run example:neko-causes -- --neko /path/to/neko-checkout [--ref v3.1.5] [--base IMAGE] [--keep DIR]')
  process.exit(3)
}

const keep = arg('--keep')
const work = keep != null ? resolve(keep) : await mkdtemp(join(tmpdir(), 'neko-causes-'))
await mkdir(work, { recursive: true })
const say = stopwatch()
try {
  const base = arg('--base') ?? await debianBase(`neko-rebuilder-example/trixie-minbase:${BASE_EPOCH}`, [], join(work, 'trixie-minbase.tar'), say)
  const recipe = join(work, 'neko-runtime.json')
  await writeFile(recipe, JSON.stringify({
    name: 'neko-runtime-local',
    variants: [{ name: 'runtime', platforms: ['linux/amd64'], build: { context: 'runtime', dockerfile: 'runtime/Dockerfile', args: { BASE_IMAGE: base } } }]
  }, null, 2))
  // A private clone: the fixed Dockerfile is committed there, never in the user's checkout.
  const repo = join(work, 'neko')
  await rm(repo, { recursive: true, force: true })
  await must('git', ['clone', '--quiet', '--no-checkout', resolve(neko), repo])
  await must('git', ['-C', repo, 'checkout', '--quiet', '-B', 'example', ref])

  const rebuild = async (refName: string, out: string): Promise<string> => await rebuildOf(repo, refName, recipe, 'runtime', out, join(work, 'ws'), say)
  const diff = async (a: string, b: string, fix?: string): Promise<ImageDiff> => await diffOf(a, b, say, fix)

  const a = await rebuild(ref, join(work, 'a'))
  const b = await rebuild(ref, join(work, 'b'))
  const dockerfile = join(repo, 'runtime/Dockerfile')
  const before = await diff(a, b, dockerfile)
  for (const g of before.causes) say(`  ${String(g.count).padStart(4)}  ${g.cause.id}  fix: ${g.cause.fix}`)
  const specific = before.paths.total === 0 ? 1 : before.paths.explained / before.paths.total
  say(`differing paths: ${before.paths.total}; with a specific cause and fix: ${before.paths.explained} (${(specific * 100).toFixed(1)}%, target >= 90%)`)

  await writeFile(dockerfile, await readFile(`${dockerfile}.fixed`, 'utf8'))
  await rm(`${dockerfile}.fixed`)
  await must('git', ['-C', repo, '-c', 'user.name=example', '-c', 'user.email=example@localhost', 'commit', '--quiet', '-am', 'runtime: remove the leftovers neko-rebuilder diff named'])
  await must('git', ['-C', repo, 'tag', '-f', 'fixed'])
  const fa = await rebuild('fixed', join(work, 'fixed-a'))
  const fb = await rebuild('fixed', join(work, 'fixed-b'))
  const after = await diff(fa, fb)
  say(`fixed Dockerfile: ${after.identical ? 'two rebuilds are IDENTICAL' : `still differs: ${after.summary}`} (index ${after.index.a})`)
  console.log(JSON.stringify({ differingPaths: before.paths.total, explained: before.paths.explained, share: Number(specific.toFixed(4)), causes: before.causes.map(g => [g.cause.id, g.count]), fixedIdentical: after.identical }))
  process.exitCode = specific >= 0.9 && after.identical ? 0 : 1
} finally {
  if (keep == null) await rm(work, { recursive: true, force: true })
}
