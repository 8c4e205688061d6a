/**
 * `neko-rebuilder verify` on a bundle of COUNT signed claims (12 layers each, one trusted
 * announcement, three trusted builders), against the library's batch decode of the same
 * file in the same run: read it, split it into lines and `decodeMessages` them 256 at a
 * time, keeping nothing. The command is run in this process through its commander
 * registration, from the same file, with `--json` and its output dropped, so the figure is
 * the command's own work per claim (process start and module loading excluded). Rates are per
 * CPU-second, the ratio is taken per round and the median reported; the target is 0.9.
 *   npm run bench:verify (both benchmarks), or: tsx benchmarks/verify-bundle.ts [COUNT]
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { register } from '../src/cli/commands/verify.js'
import { generateIdentity } from '../src/protocol/keys.js'
import { decodeMessages, signAnnouncement, signClaim } from '../src/protocol/messages.js'
import { parsePolicy, policyKeys } from '../src/protocol/policy.js'
import { sampleClaim } from './claims.js'

const COUNT = Number(process.argv[2] ?? 100_000)
const ROUNDS = 3
const TARGET = 0.9
const BATCH = 256

const builders = [generateIdentity(), generateIdentity(), generateIdentity()]
const announcer = generateIdentity()
const policyJson = {
  version: 1,
  builders: builders.map((b, i) => ({ name: `b${i}`, operator: `op${i}`, publicKey: b.publicKeyPem })),
  announcers: [{ name: 'release', publicKey: announcer.publicKeyPem }],
  threshold: 2,
  minOperators: 2,
  allowedDissent: 0
}
const keys = policyKeys(parsePolicy(policyJson))

const dir = await mkdtemp(join(tmpdir(), 'neko-bench-verify-'))
const bundleFile = join(dir, 'bundle.jsonl')
const policyFile = join(dir, 'policy.json')
const first = sampleClaim(0)
const announcement = signAnnouncement({
  repository: first.target.repository,
  tag: 'v3.0.0',
  commit: first.target.commit,
  recipe: first.recipe,
  targets: Array.from({ length: 16 }, (_, i) => ({ variant: `variant-${i % 8}`, platform: i % 2 === 0 ? 'linux/amd64' : 'linux/arm64' })).filter((t, i, all) => all.findIndex(u => u.variant === t.variant && u.platform === t.platform) === i),
  announcedAt: '2026-01-01T00:00:00Z'
}, announcer)
const lines = [JSON.stringify(announcement)]
for (let i = 0; i < COUNT - 1; i++) lines.push(JSON.stringify(signClaim(sampleClaim(i), builders[i % builders.length]!)))
await writeFile(bundleFile, lines.join('\n') + '\n')
await writeFile(policyFile, JSON.stringify(policyJson))
lines.length = 0

function cpuSeconds (since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since)
  return (u.user + u.system) / 1e6
}

async function library (): Promise<void> {
  const all = readFileSync(bundleFile, 'utf8').split('\n')
  let ok = 0
  for (let i = 0; i < all.length; i += BATCH) {
    for (const r of decodeMessages(all.slice(i, i + BATCH).filter(l => l !== ''), { keys, allowEmbeddedKeys: true })) if (r.ok) ok++
  }
  if (ok !== COUNT) throw new Error(`library decoded ${ok} of ${COUNT}`)
}

async function cli (): Promise<void> {
  const program = new Command('neko-rebuilder').exitOverride()
  register(program)
  const write = process.stdout.write
  let out = 0
  process.stdout.write = ((chunk: string | Uint8Array) => { out += chunk.length; return true }) as typeof process.stdout.write
  try {
    await program.parseAsync(['verify', bundleFile, '--policy', policyFile, '--json'], { from: 'user' })
  } finally {
    process.stdout.write = write
  }
  if (out === 0) throw new Error('verify printed nothing')
  process.exitCode = undefined
}

const paths: Record<string, () => Promise<void>> = { 'library decodeMessages': library, 'neko-rebuilder verify': cli }
for (const run of Object.values(paths)) await run()
const seconds: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map(k => [k, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(paths)) {
    const t = process.cpuUsage()
    await run()
    seconds[name]!.push(cpuSeconds(t))
  }
}
await rm(dir, { recursive: true, force: true })

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const lib = seconds['library decodeMessages']!
const cmd = seconds['neko-rebuilder verify']!
const ratio = median(cmd.map((x, i) => lib[i]! / x))
console.log(`bundle of ${COUNT} lines (${COUNT - 1} claims, 1 announcement), ${ROUNDS} rounds; rates per CPU-second`)
for (const [name, s] of Object.entries(seconds)) console.log(`${name.padEnd(34)} ${(ROUNDS * COUNT / s.reduce((a, b) => a + b, 0)).toFixed(0).padStart(6)} /s`)
console.log(`verify / library decode: ${ratio.toFixed(3)} (target >= ${TARGET}: ${ratio >= TARGET ? 'yes' : 'NO'})`)
console.log(JSON.stringify({ bench: 'verify-bundle', count: COUNT, rounds: ROUNDS, target: TARGET, ratio, met: ratio >= TARGET, seconds }))
