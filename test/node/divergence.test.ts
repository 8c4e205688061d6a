import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import type { Daemon } from '../../src/node/daemon/index.js'
import { listReports } from '../../src/node/divergence/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { verifyDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'
import { engineAvailable } from '../helpers/engine.js'
import { runCli } from '../rebuilder/cli-runner.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { policyFor, startDaemon, verdictsOf, waitFor } from './helpers.js'

const available = engineAvailable('divergence explained') && busyboxAvailable()
if (!busyboxAvailable()) process.stderr.write('[skip] divergence explained: no busybox fixture; run scripts/setup-host.sh\n')

const RANDOM_BYTES = 4 * 1024 * 1024

/**
 * Content-only differences that only a file's bytes explain: a gzip header that records the
 * build time, a timestamp-based .pyc, a random id at a path no rule knows, a stamped text line.
 */
const STAMP = [
  'set -e',
  'mkdir -p /opt/app/__pycache__',
  't=$(date +%s)',
  // The four bytes of t, little-endian, as octal escapes for printf.
  String.raw`le () { for s in 0 8 16 24; do printf "\\$(printf %o $(( (t >> s) & 255 )))"; done; }`,
  String.raw`{ printf "\037\213\010\000"; le; printf "\000\003"; echo changelog | gzip -c | dd bs=1 skip=10 2>/dev/null; } > /opt/changelog.gz`,
  String.raw`{ printf "\125\015\015\012\000\000\000\000"; le; printf "\020\000\000\000"; head -c 16 /dev/urandom; } > /opt/app/__pycache__/m.cpython-311.pyc`,
  'cat /proc/sys/kernel/random/uuid > /opt/instance-id',
  'echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > /opt/build-info.txt',
  ''
].join('\n')

/**
 * Nondeterministic on purpose, several causes at once: a random machine id, package
 * manager logs, font caches, a 4 MiB random file nothing explains, and STAMP. Random bytes
 * make every build differ even where the engine could share work between builds.
 */
const DOCKERFILE = scratchDockerfile([
  'RUN mkdir -p /etc /var/log/apt /var/cache/fontconfig /opt && ' +
  'head -c 16 /dev/urandom > /etc/machine-id && ' +
  'head -c 32 /dev/urandom > /var/log/dpkg.log && ' +
  'head -c 32 /dev/urandom > /var/log/apt/history.log && ' +
  'head -c 64 /dev/urandom > /var/cache/fontconfig/0123-le64.cache-9 && ' +
  'head -c 64 /dev/urandom > /var/cache/fontconfig/4567-le64.cache-9 && ' +
  `head -c ${RANDOM_BYTES} /dev/urandom > /opt/random.bin`,
  'COPY stable.txt /opt/stable.txt',
  'COPY stamp.sh /stamp.sh',
  'RUN sh /stamp.sh'
], { applets: ['sh', 'mkdir', 'head', 'cat', 'date', 'printf', 'gzip', 'dd', 'echo'] })

async function largestFile (dir: string): Promise<number> {
  let max = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const s = await stat(join(e.parentPath, e.name)).catch(() => undefined)
    if (s != null && s.size > max) max = s.size
  }
  return max
}

describe.skipIf(!available)('divergence explained over loopback with the real engine', () => {
  let root: string
  let repo: FixtureRepo
  let ids: SigningIdentity[]
  let announcer: SigningIdentity
  const daemons: Daemon[] = []
  const observers: Daemon[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-divergence-'))
    repo = await createFixtureRepo({ files: { Dockerfile: DOCKERFILE, 'stable.txt': 'the same in every build\n', 'stamp.sh': STAMP }, busybox: 'amd64', tag: 'v0.0.1' }, root)
    ids = [generateIdentity(), generateIdentity()]
    announcer = generateIdentity()
  })

  afterAll(async () => {
    for (const d of [...daemons, ...observers]) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('each builder fetches the other\'s file manifest, signs a report with the causes, and no layer crosses the network', async () => {
    const policy = policyFor(ids, [announcer])
    // One build after the other: the second node joins once the first has claimed. Only the
    // first keeps its OCI output, so only its report can read its own side's bytes.
    const a = await startDaemon({ dir: join(root, 'a'), identity: ids[0]!, policy, build: true, manifests: true, outputs: true, http: true })
    daemons.push(a)
    // An observer: no engine, no manifests; it learns of the reports by gossip alone.
    const observer = await startDaemon({ dir: join(root, 'c'), identity: generateIdentity(), policy, http: true, bootstrap: [a.multiaddrs()[0]!] })
    observers.push(observer)
    const announcement = await prepareAnnouncement({ repository: repo.dir, tag: 'v0.0.1', platforms: ['linux/amd64'] })
    await a.announce(signAnnouncement(announcement, announcer))
    const commit = announcement.commit
    await waitFor('the first build', async () => (await a.store.claimsForCommit(repo.dir, commit)).length >= 1, 150_000)
    const b = await startDaemon({ dir: join(root, 'b'), identity: ids[1]!, policy, build: true, manifests: true, http: true, bootstrap: [a.multiaddrs()[0]!] })
    daemons.push(b)
    await waitFor('both claims on both nodes', async () => {
      for (const d of daemons) if ((await d.store.claimsForCommit(repo.dir, commit)).length < 2) return false
      return true
    }, 150_000)
    for (const d of daemons) {
      const claims = await d.store.claimsForCommit(repo.dir, commit)
      expect(claims.every(c => c.claim.result != null), 'both builds succeed').toBe(true)
      expect(new Set(claims.map(c => c.claim.result!.manifestDigest)).size, 'the builds differ').toBe(2)
      const [verdict] = await verdictsOf(d, repo.dir, commit)
      expect(verdict!.status).toBe('unreproducible')
    }

    await waitFor('a divergence report on each node', async () => {
      for (const [i, d] of daemons.entries()) if (!(await listReports(d.store)).some(r => r.keyId === ids[i]!.keyId)) return false
      return true
    }, 60_000)

    const reports = []
    for (const [i, d] of daemons.entries()) {
      const stored = (await listReports(d.store, { tag: 'v0.0.1' })).find(r => r.keyId === ids[i]!.keyId)
      // Anyone can verify it: the embedded key, then the policy's.
      const { report, keyId } = verifyDivergenceReport(stored!.envelopeJson, { keys: policy.builderKeys })
      reports.push(report)
      expect(keyId).toBe(ids[i]!.keyId)
      expect(report.a.keyId).toBe(ids[i]!.keyId)
      expect(report.b.keyId).toBe(ids[1 - i]!.keyId)
      // What crossed the network: a few hundred bytes of manifest entries, not a 4 MiB layer.
      expect(report.fetched.entries).toBeGreaterThan(10)
      expect(report.fetched.bytes).toBeLessThan(64 * 1024)
    }
    const [fromA, fromB] = reports as [DivergenceReport, DivergenceReport]
    // a read its own kept image: every content-only difference but the random file has a cause.
    expect(Object.fromEntries(fromA.causes.map(c => [c.id, c.count]))).toEqual({ 'machine-id': 2, 'package-logs': 2, 'fontconfig-cache': 2, 'gzip-header': 1, 'python-bytecode': 1, 'embedded-timestamp': 1, unknown: 1 })
    expect(fromA.paths).toEqual({ total: 10, explained: 9 })
    const machineId = fromA.causes.find(c => c.id === 'machine-id')!
    expect(machineId.fix).toMatch(/rm -f \/etc\/machine-id/)
    expect(machineId.steps[0]).toMatch(/head -c 16 \/dev\/urandom/)
    expect(machineId.paths).toEqual(['etc/machine-id', 'opt/instance-id'])
    expect(machineId.evidence).toEqual(['opt/instance-id: holds a random 128-bit id, as /etc/machine-id does'])
    const evidence = (id: string): string => fromA.causes.find(c => c.id === id)!.evidence!.join('\n')
    expect(evidence('gzip-header')).toMatch(/^opt\/changelog\.gz: gzip header mtime 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ on this side$/)
    expect(evidence('python-bytecode')).toMatch(/^opt\/app\/__pycache__\/m\.cpython-311\.pyc: timestamp-based \.pyc, source mtime 20/)
    expect(evidence('embedded-timestamp')).toMatch(/^opt\/build-info\.txt: holds a date or time: built 20/)
    expect(fromA.causes.find(c => c.id === 'unknown')!.paths).toEqual(['opt/random.bin'])
    // b kept no output: from the manifests alone those four files have no cause.
    expect(Object.fromEntries(fromB.causes.map(c => [c.id, c.count]))).toEqual({ 'machine-id': 1, 'package-logs': 2, 'fontconfig-cache': 2, unknown: 5 })
    expect(fromB.paths).toEqual({ total: 10, explained: 5 })

    // b wrote nothing layer-sized: its tarball was read for its manifest and removed. a keeps
    // exactly one tarball, its output, and nothing else of that size.
    expect(await largestFile(join(root, 'b'))).toBeLessThan(RANDOM_BYTES)
    const outputs = await readdir(join(root, 'a', 'outputs'))
    expect(outputs).toEqual([`${fromA.a.manifestDigest.slice(7)}.oci.tar`])
    await rm(join(root, 'a', 'outputs'), { recursive: true })
    expect(await largestFile(join(root, 'a'))).toBeLessThan(RANDOM_BYTES)

    // The observer, which built nothing, received both reports by gossip and shows their causes.
    await waitFor('both reports on the observer', async () => (await listReports(observer.store)).length === 2, 30_000)
    expect(new Set((await listReports(observer.store)).map(r => r.keyId))).toEqual(new Set(ids.map(i => i.keyId)))
    const seen = await (await fetch(`${observer.httpUrl()!}/api/v1/divergences?tag=v0.0.1`)).json() as { items: Array<{ envelope: unknown }> }
    expect(seen.items.map(i => verifyDivergenceReport(i.envelope, { keys: policy.builderKeys }).report.paths.explained).sort()).toEqual([5, 9])

    // The API serves the reports, and the JSON Feed lists them.
    const api = await (await fetch(`${a.httpUrl()!}/api/v1/divergences?tag=v0.0.1`)).json() as { items: Array<{ keyId: string, envelope: unknown }> }
    // Its own report, and b's received by gossip.
    expect(api.items.map(i => verifyDivergenceReport(i.envelope, { allowEmbeddedKeys: true }).keyId).sort()).toEqual(ids.map(i => i.keyId).sort())
    const feed = await (await fetch(`${a.httpUrl()!}/feed.json`)).json() as { items: Array<{ id: string, tags?: string[], content_text: string }> }
    const item = feed.items.find(i => i.id.startsWith('divergence:'))
    expect(item?.tags).toEqual(expect.arrayContaining(['divergence', 'machine-id', 'package-logs', 'fontconfig-cache', 'unknown']))

    // status, from a node's feed and from a stopped node's own store, shows the causes, counts, step and fix.
    const policyFile = join(root, 'policy.json')
    await writeFile(policyFile, JSON.stringify({ version: 1, builders: ids.map((id, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: id.publicKeyPem })), announcers: [{ name: 'announcer', publicKey: announcer.publicKeyPem }], threshold: 2, minOperators: 2, allowedDissent: 0 }))
    const remote = await runCli(['status', 'v0.0.1', '--node', a.httpUrl()!, '--policy', policyFile])
    const fromObserver = await runCli(['status', 'v0.0.1', '--node', observer.httpUrl()!, '--policy', policyFile])
    await b.stop()
    const local = await runCli(['status', 'v0.0.1', '--data-dir', join(root, 'b'), '--policy', policyFile])
    for (const [where, r] of [['a', remote], ['observer', fromObserver]] as const) {
      expect(r.stdout, where).toMatch(/unreproducible/)
      expect(r.stdout, where).toMatch(/why builds differ .*10 paths, 9 with a known cause/)
      expect(r.stdout, where).toMatch(/package-logs × 2: .*\n\s+step: RUN .*head -c 16 \/dev\/urandom.*\n\s+fix: /)
      expect(r.stdout, where).toMatch(/machine-id × 2: .*etc\/machine-id, opt\/instance-id/)
      expect(r.stdout, where).toMatch(/gzip-header × 1: .*opt\/changelog\.gz.*\n\s+step: RUN .*sh \/stamp\.sh.*\n\s+seen: opt\/changelog\.gz: gzip header mtime .*\n\s+fix: /)
      expect(r.stdout, where).toMatch(/unknown × 1: .*opt\/random\.bin/)
    }
    for (const [where, r] of [['observer', fromObserver], ['b', local]] as const) {
      expect(r.stdout, where).toMatch(/why builds differ .*10 paths, 5 with a known cause/)
      expect(r.stdout, where).toMatch(/unknown × 5: /)
    }
    const json = await runCli(['status', 'v0.0.1', '--data-dir', join(root, 'b'), '--policy', policyFile, '--json'])
    const divergences = (JSON.parse(json.stdout) as { divergences: Array<{ keyId: string, causes: Array<{ id: string, count: number }> }> }).divergences
    // b's store holds its own report and a's, received by gossip.
    expect(divergences.map(d => d.keyId).sort()).toEqual(ids.map(i => i.keyId).sort())
    expect(divergences.find(d => d.keyId === ids[1]!.keyId)!.causes.map(c => [c.id, c.count])).toEqual([['unknown', 5], ['fontconfig-cache', 2], ['package-logs', 2], ['machine-id', 1]])

  }, 400_000)
})
