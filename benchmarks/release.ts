/**
 * A whole release across a small network, timed: three nodes, each on a Docker engine of its
 * own (src/node/engines: a dockerd per node; needs root), rebuild a fixture release shaped
 * like Neko's (two bases, each for amd64 and arm64, the arm64 builds under qemu emulation,
 * two apps on each base: 12 targets) from its signed announcement until every node has a
 * verdict on every target. Every engine build is timed through a wrapper of the docker CLI,
 * which gives, in the same run:
 *   - builds per target and per node (engine builds, and signed claims);
 *   - the time from the announcement to every target decided on every node;
 *   - the lower bound max(longest chain of builds, total build work / nodes), from the
 *     median duration of each target's build across the nodes (an app's chain is its base
 *     and itself).
 * Target (issue 22): decided within 1.2 x the lower bound + 60 s. The last line is JSON.
 *
 *   npm run bench:release
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generateIdentity } from '../src/protocol/keys.js'
import { signAnnouncement } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { targetKey } from '../src/protocol/target.js'
import { judge, judgedClaims } from '../src/node/consensus/evaluate.js'
import { composePolicy } from '../src/node/daemon/policy.js'
import { prepareAnnouncement } from '../src/node/daemon/announce.js'
import { createDaemon } from '../src/node/daemon/daemon.js'
import type { Daemon } from '../src/node/daemon/types.js'
import { createLocalEngine, type LocalEngine } from '../src/node/engines/index.js'
import { createLogger } from '../src/node/logger.js'
import { TOPICS } from '../src/node/p2p/index.js'
import { createRebuilder } from '../src/node/rebuilder/index.js'
import { createStore } from '../src/node/store/index.js'
import { busyboxPath } from '../test/helpers/fixtures.js'

const run = promisify(execFile)
const logger = createLogger({ defaultLevel: 'warn' })
const NODES = 3
const PLATFORMS = ['linux/amd64', 'linux/arm64']
/** Busy-loop rounds of a base's and an app's build step: a base costs a few times an app, as in Neko. */
const BASE_ROUNDS = 400_000
const APP_ROUNDS = 150_000
const TIMEOUT_MS = 30 * 60_000

const BASES = { 'base-a': ['app-a1', 'app-a2'], 'base-b': ['app-b1', 'app-b2'] } as const

/** The fixture repository: its own recipe, a FROM-scratch busybox image per base, apps on them. */
async function fixtureRelease (dir: string): Promise<{ repository: string, tag: string }> {
  await mkdir(dir, { recursive: true })
  for (const arch of ['amd64', 'arm64'] as const) await copyFile(busyboxPath(arch), join(dir, `busybox-${arch}`))
  const loop = (rounds: number, name: string): string => `RUN i=0; while [ $i -lt ${rounds} ]; do i=$((i+1)); done; echo ${name} $i > /${name}`
  const variants: unknown[] = []
  for (const [base, apps] of Object.entries(BASES)) {
    await mkdir(join(dir, base), { recursive: true })
    await writeFile(join(dir, base, 'Dockerfile'), ['FROM scratch', 'ARG TARGETARCH', 'COPY busybox-${TARGETARCH} /bin/busybox', 'SHELL ["/bin/busybox", "sh", "-c"]', loop(BASE_ROUNDS, base), ''].join('\n'))
    variants.push({ name: base, platforms: PLATFORMS, build: { context: '.', dockerfile: `${base}/Dockerfile` } })
    for (const app of apps) {
      await mkdir(join(dir, app), { recursive: true })
      await writeFile(join(dir, app, 'Dockerfile'), ['ARG BASE_IMAGE=registry.example/base:latest', 'FROM $BASE_IMAGE', 'SHELL ["/bin/busybox", "sh", "-c"]', loop(APP_ROUNDS, app), ''].join('\n'))
      variants.push({ name: app, platforms: PLATFORMS, build: { context: app, dockerfile: `${app}/Dockerfile` }, from: { BASE_IMAGE: base } })
    }
  }
  await writeFile(join(dir, 'neko-rebuilder.json'), JSON.stringify({ name: 'release-bench', variants }, null, 2))
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@example.invalid', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@example.invalid', GIT_AUTHOR_DATE: '@1700000000 +0000', GIT_COMMITTER_DATE: '@1700000000 +0000' }
  for (const args of [['init', '--quiet', '--initial-branch=main'], ['add', '-A'], ['commit', '--quiet', '-m', 'release'], ['tag', 'v1.0.0']]) await run('git', args, { cwd: dir, env })
  return { repository: dir, tag: 'v1.0.0' }
}

/** The docker CLI, wrapped to record each image build: start, end, exit status and its arguments. */
async function timedCli (dir: string): Promise<{ cli: string, log: string }> {
  const log = join(dir, 'builds.log')
  const cli = join(dir, 'docker')
  await writeFile(log, '')
  await writeFile(cli, [
    '#!/bin/sh',
    'if [ "$1" = buildx ] && [ "$2" = build ]; then',
    '  start=$(date +%s.%N); docker "$@"; rc=$?; end=$(date +%s.%N)',
    `  echo "$start $end $rc $*" >> '${log}'; exit $rc`,
    'fi',
    'exec docker "$@"',
    ''
  ].join('\n'))
  await chmod(cli, 0o755)
  return { cli, log }
}

interface Build { node: number, variant: string, platform: string, seconds: number }

async function builds (node: number, log: string): Promise<Build[]> {
  return (await readFile(log, 'utf8')).split('\n').filter(l => l !== '').flatMap(l => {
    const [start, end, rc, ...args] = l.split(' ')
    const platform = args[args.indexOf('--platform') + 1] ?? ''
    const variant = (args[args.indexOf('-f') + 1] ?? '').split('/').at(-2) ?? ''
    return rc === '0' ? [{ node, variant, platform, seconds: Number(end) - Number(start) }] : []
  })
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const round = (x: number): number => Math.round(x * 10) / 10

const work = await mkdtemp(join(tmpdir(), 'bench-release-'))
const engines: LocalEngine[] = []
const daemons: Daemon[] = []
try {
  const project = await fixtureRelease(join(work, 'project'))
  const ids = Array.from({ length: NODES }, () => generateIdentity())
  const announcer = generateIdentity()
  const policy = parsePolicy(composePolicy(ids.map((b, i) => ({ name: `node-${i + 1}`, operator: `operator-${i + 1}`, publicKeyPem: b.publicKeyPem })), [{ name: 'announcer', publicKeyPem: announcer.publicKeyPem }], { threshold: 2, minOperators: 2 }))
  const stem = `nkb-${randomBytes(3).toString('hex')}`
  for (let i = 0; i < NODES; i++) engines.push(createLocalEngine({ logger }, { name: `${stem}-${i + 1}`, dir: join(work, `engine-${i + 1}`) }))
  const up = await Promise.allSettled(engines.map(async e => { await e.start() }))
  const failed = up.find(r => r.status === 'rejected')
  if (failed != null) throw failed.reason
  const clis = []
  for (let i = 0; i < NODES; i++) {
    const nodeDir = join(work, `node-${i + 1}`)
    await mkdir(nodeDir, { recursive: true })
    const cli = await timedCli(nodeDir)
    clis.push(cli)
    const store = await createStore({ logger }, { path: join(nodeDir, 'store') })
    const rebuilder = createRebuilder({ logger }, { workDir: join(nodeDir, 'work'), dockerHost: engines[i]!.dockerHost, dockerCli: cli.cli })
    const caps = await rebuilder.capabilities()
    for (const p of PLATFORMS) if (!caps.platforms.some(c => c.platform === p)) throw new Error(`engine ${i + 1} cannot build ${p} (binfmt/qemu missing?)`)
    // Default concurrency (from this machine's cores and memory), as `join` runs it.
    const daemon = await createDaemon({ identity: ids[i]!, store, policy, rebuilder, logger }, {
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: daemons.map(d => d.multiaddrs()[0]!),
      mdns: false,
      gossip: { heartbeatIntervalMs: 200 }
    })
    await daemon.start()
    daemons.push(daemon)
  }
  const meshDeadline = Date.now() + 30_000
  while (!daemons.every(d => (d.p2p.stats().mesh[TOPICS.claims] ?? 0) >= 1) && Date.now() < meshDeadline) await new Promise(resolve => setTimeout(resolve, 100))

  const announcement = await prepareAnnouncement({ repository: project.repository, tag: project.tag })
  const keys = announcement.targets.map(t => targetKey({ repository: announcement.repository, commit: announcement.commit, ...t }))
  const t0 = performance.now()
  await daemons[0]!.announce(signAnnouncement(announcement, announcer))
  const decidedOn = async (d: Daemon): Promise<boolean> => {
    const claims = judgedClaims(await d.store.claimsForCommit(announcement.repository, announcement.commit, policy.builderKeys.keys()))
    const { verdicts } = judge({ policy, announcements: [announcement], claims })
    return verdicts.length === keys.length && verdicts.every(v => v.status !== 'pending')
  }
  const deadline = Date.now() + TIMEOUT_MS
  let decided = false
  while (!decided && Date.now() < deadline) {
    decided = (await Promise.all(daemons.map(decidedOn))).every(Boolean)
    if (!decided) await new Promise(resolve => setTimeout(resolve, 250))
  }
  const elapsed = (performance.now() - t0) / 1000
  // What the nodes still had queued is not part of the verdict's time, but their builds are counted when done.
  await Promise.all(daemons.map(async d => { await d.scheduler.idle() }))

  const all = (await Promise.all(clis.map(async (c, i) => await builds(i + 1, c.log)))).flat()
  const stored = judgedClaims(await daemons[0]!.store.claimsForCommit(announcement.repository, announcement.commit, policy.builderKeys.keys()))
  const { verdicts } = judge({ policy, announcements: [announcement], claims: stored })
  const per = new Map<string, number>()
  for (const t of announcement.targets) per.set(`${t.variant} ${t.platform}`, median(all.filter(b => b.variant === t.variant && b.platform === t.platform).map(b => b.seconds)))
  const baseOf = new Map<string, string>(Object.entries(BASES).flatMap(([b, apps]) => apps.map(a => [a, b] as [string, string])))
  const chain = (variant: string, platform: string): number => (per.get(`${variant} ${platform}`) ?? 0) + (baseOf.has(variant) ? (per.get(`${baseOf.get(variant)!} ${platform}`) ?? 0) : 0)
  const longestChain = Math.max(...announcement.targets.map(t => chain(t.variant, t.platform)))
  const totalWork = [...per.values()].reduce((a, b) => a + b, 0)
  const lowerBound = Math.max(longestChain, totalWork / NODES)
  const slowest = Math.max(...per.values())
  const target = 1.2 * lowerBound + 60

  console.log(`release of ${announcement.targets.length} targets (2 bases and 4 apps, amd64 and arm64 under emulation), ${NODES} nodes on ${NODES} engines`)
  console.log('target                     median build  engine builds  claims')
  for (const t of announcement.targets) {
    const key = `${t.variant} ${t.platform}`
    const claims = stored.filter(c => c.claim.target.variant === t.variant && c.claim.target.platform === t.platform).length
    console.log(`${key.padEnd(27)}${`${round(per.get(key) ?? 0)} s`.padEnd(14)}${String(all.filter(b => `${b.variant} ${b.platform}` === key).length).padEnd(15)}${claims}`)
  }
  for (let i = 1; i <= NODES; i++) console.log(`node ${i}: ${all.filter(b => b.node === i).length} engine builds, ${stored.filter(c => c.keyId === ids[i - 1]!.keyId).length} claims`)
  console.log(`verdicts: ${verdicts.map(v => v.status).filter((s, i, a) => a.indexOf(s) === i).join(', ')}`)
  console.log(`announcement to every target decided on every node: ${round(elapsed)} s; lower bound max(longest chain ${round(longestChain)} s, work ${round(totalWork)} s / ${NODES}) = ${round(lowerBound)} s; slowest build ${round(slowest)} s`)
  console.log(JSON.stringify({
    bench: 'release',
    targets: announcement.targets.length,
    nodes: NODES,
    decided: decided,
    seconds: round(elapsed),
    lowerBoundSeconds: round(lowerBound),
    longestChainSeconds: round(longestChain),
    totalWorkSeconds: round(totalWork),
    slowestBuildSeconds: round(slowest),
    ratio: Math.round(elapsed / lowerBound * 100) / 100,
    engineBuildsPerTarget: round(all.length / announcement.targets.length),
    engineBuildsPerNode: Array.from({ length: NODES }, (_, i) => all.filter(b => b.node === i + 1).length),
    claimsPerNode: ids.map(id => stored.filter(c => c.keyId === id.keyId).length),
    target: '<= 1.2 x lower bound + 60 s',
    targetSeconds: round(target),
    met: decided && elapsed <= target
  }))
} finally {
  for (const d of daemons) await d.stop().catch(() => {})
  await Promise.all(engines.map(async e => { await e.stop() }))
  await rm(work, { recursive: true, force: true })
}
