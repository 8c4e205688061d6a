/**
 * Worked examples of why builds differ, one per ecosystem: a small app and its Dockerfile in
 * the shape of Docker's language guide (benchmarks/ecosystems/NAME/), built twice through the
 * real engine with `neko-rebuilder rebuild` on a local Debian base, compared with `diff`;
 * `audit` says beforehand which causes the Dockerfile predicts. The removals `diff --fix`
 * writes are committed to the example's repository, which is rebuilt twice more and compared
 * again, and fixed again where a fix uncovers more of the same (three rounds at most). Prints
 * the differing paths, the share with a specific cause (goal >= 90%) and whether the fixed
 * rebuilds are identical, then one JSON line. Not part of `npm test`.
 *
 *   npm run example:causes -- --ecosystem javascript|python|go|rust [--base IMAGE] [--ca-dir DIR] [--keep DIR]
 *
 * --ca-dir: certificates the base must trust, where egress goes through a TLS-intercepting
 * proxy (as on the machine these examples were run on: /usr/local/share/ca-certificates).
 *
 * Only the npm registry and Debian's mirror are reached: the base is one image for all four,
 * made once with mmdebstrap (trixie minbase plus nodejs, npm, python3, Flask, golang, cargo
 * and the few packaged libraries the apps use) and `docker import`, and kept under a fixed tag.
 * Python, Go and Rust use Debian's packaged libraries instead of PyPI, a Go proxy or crates.io.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { applyFixes } from '../src/node/compare/index.js'
import { arg, BASE_EPOCH, cli, debianBase, diff, must, rebuild, ROOT, stopwatch, withCa } from './example-lib.js'

/** Each example: its directory under benchmarks/ecosystems, and the public guide whose shape its Dockerfile follows. */
const ECOSYSTEMS: Record<string, { guide: string }> = {
  javascript: { guide: 'Docker docs, Node.js guide: npm ci of a locked Express app' },
  python: { guide: 'Docker docs, Python guide: venv + pip install of a Flask app' },
  go: { guide: 'Docker docs, Go guide: go build of a static HTTP server' },
  rust: { guide: 'Docker docs, Rust guide: cargo build --release in one stage' }
}

/** Everything the four examples need, in one base built once. */
const BASE_PACKAGES = [
  'ca-certificates', 'nodejs', 'npm',
  'python3', 'python3-venv', 'python3-pip', 'python3-setuptools', 'python3-wheel', 'python3-flask',
  'golang-go', 'golang-github-google-uuid-dev',
  'cargo', 'rustc', 'librust-itoa-dev'
]
export const ECOSYSTEM_BASE = `neko-rebuilder-example/trixie-ecosystems:${BASE_EPOCH}`

const name = arg('--ecosystem')
const example = name == null ? undefined : ECOSYSTEMS[name]
if (name == null || example == null) {
  console.error(`usage: npm run example:causes -- --ecosystem ${Object.keys(ECOSYSTEMS).join('|')} [--base IMAGE] [--ca-dir DIR] [--keep DIR]`)
  process.exit(3)
}

const keep = arg('--keep')
const work = keep != null ? resolve(keep) : await mkdtemp(join(tmpdir(), `causes-${name}-`))
await mkdir(work, { recursive: true })
const say = stopwatch()
const git = async (...args: string[]): Promise<string> => await must('git', ['-C', repo, '-c', 'user.name=example', '-c', 'user.email=example@localhost', ...args])
const repo = join(work, name)
try {
  const made = arg('--base') ?? await debianBase(ECOSYSTEM_BASE, BASE_PACKAGES, join(work, 'base.tar'), say)
  const caDir = arg('--ca-dir')
  const base = caDir != null ? await withCa(made, resolve(caDir), join(work, 'ca-context'), say) : made
  say(`${name}: ${example.guide}; base ${base}`)
  await rm(repo, { recursive: true, force: true })
  await cp(join(ROOT, 'benchmarks/ecosystems', name), repo, { recursive: true })
  await must('git', ['init', '--quiet', '-b', 'main', repo])
  await git('add', '-A')
  await git('commit', '--quiet', '-m', `${name} example`)
  await git('tag', 'v1')
  const recipe = join(work, 'recipe.json')
  await writeFile(recipe, JSON.stringify({
    name: `causes-${name}`,
    variants: [{ name, platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile', args: { BASE_IMAGE: base } } }]
  }, null, 2))

  // What the Dockerfile predicts, before anything is built.
  const audit = await cli(['audit', repo, '--format', 'json'])
  const predicted = [...new Set((JSON.parse(audit.stdout) as { findings: Array<{ ruleId: string }> }).findings.map(f => f.ruleId))].sort()
  say(`audit predicts: ${predicted.join(', ') || 'nothing'}`)

  const ws = join(work, 'ws')
  const a = await rebuild(repo, 'v1', recipe, name, join(work, 'a'), ws, say)
  const b = await rebuild(repo, 'v1', recipe, name, join(work, 'b'), ws, say)
  const dockerfile = join(repo, 'Dockerfile')
  const before = await diff(a, b, say, dockerfile)
  for (const g of before.causes) say(`  ${String(g.count).padStart(5)}  ${g.cause.id}${g.cause.auditRule != null ? ` (${g.cause.auditRule})` : ''}  e.g. ${g.paths.slice(0, 2).join(', ')}`)
  const unknown = before.layers.flatMap(l => l.changes.filter(c => c.cause?.id === 'unknown').map(c => `${c.path}${c.detail != null ? `: ${c.detail}` : ''}`))
  for (const u of unknown.slice(0, 10)) say(`  unknown: ${u}`)
  const share = before.paths.total === 0 ? 1 : before.paths.explained / before.paths.total
  say(`differing paths: ${before.paths.total}; with a specific cause and fix: ${before.paths.explained} (${(share * 100).toFixed(1)}%, goal >= 90%)`)
  const plan = applyFixes(await readFile(dockerfile, 'utf8'), before)

  // The fixes can uncover more of the same: a removal in one RUN lets the next RUN write it
  // again (pip's bytecode, removed after `python3 -m venv`, is written anew when pip runs). So
  // the fixed Dockerfile is rebuilt and compared, and fixed again, for at most MAX_ROUNDS rounds.
  const MAX_ROUNDS = 3
  let after: Awaited<ReturnType<typeof diff>> | undefined
  let current = before
  let rounds = 0
  const applied: string[] = []
  while (!current.identical && rounds < MAX_ROUNDS) {
    const fix = applyFixes(await readFile(dockerfile, 'utf8'), current)
    if (fix.applied.length === 0) break
    applied.push(...fix.applied.flatMap(f => f.causes))
    rounds++
    await writeFile(dockerfile, await readFile(`${dockerfile}.fixed`, 'utf8'))
    await rm(`${dockerfile}.fixed`)
    await git('commit', '--quiet', '-am', `Remove the leftovers neko-rebuilder diff named (round ${rounds})`)
    await git('tag', '-f', `fixed-${rounds}`)
    const fa = await rebuild(repo, `fixed-${rounds}`, recipe, name, join(work, `fixed-${rounds}-a`), ws, say)
    const fb = await rebuild(repo, `fixed-${rounds}`, recipe, name, join(work, `fixed-${rounds}-b`), ws, say)
    after = await diff(fa, fb, say, dockerfile)
    current = after
    say(`fixed Dockerfile, round ${rounds}: ${after.identical ? 'two rebuilds are IDENTICAL' : `still differs: ${after.summary}`}`)
  }
  const fixedIdentical = before.identical || after?.identical === true
  console.log(JSON.stringify({
    example: 'causes',
    ecosystem: name,
    guide: example.guide,
    differingPaths: before.paths.total,
    explained: before.paths.explained,
    share: Number(share.toFixed(4)),
    goal: 0.9,
    causes: before.causes.map(g => [g.cause.id, g.count]),
    predicted,
    fixes: { applied: [...new Set(applied)], byHand: [...new Set(plan.manual.map(m => m.cause))], rounds },
    fixedIdentical,
    ...(after != null && !after.identical ? { fixedDiffering: after.paths.total, fixedCauses: after.causes.map(g => [g.cause.id, g.count]) } : {})
  }))
  process.exitCode = share >= 0.9 && fixedIdentical ? 0 : 1
} finally {
  if (keep == null) await rm(work, { recursive: true, force: true })
}
