import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import type { Daemon } from '../../src/node/daemon/index.js'
import { listReports } from '../../src/node/triage/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { verifyDivergenceReport } from '../../src/protocol/triage.js'
import { engineAvailable } from '../helpers/engine.js'
import { runCli } from '../build/cli-runner.js'
import { busyboxAvailable, createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'
import { policyFor, startDaemon, verdictsOf, waitFor } from './helpers.js'

const available = engineAvailable('divergence triage') && busyboxAvailable()
if (!busyboxAvailable()) process.stderr.write('[skip] divergence triage: no busybox fixture; run scripts/setup-host.sh\n')

const RANDOM_BYTES = 4 * 1024 * 1024

/**
 * Nondeterministic on purpose, several causes at once: a random machine id, package
 * manager logs, font caches, and a 4 MiB random file nothing explains. Random bytes make
 * every build differ even where the engine could share work between builds.
 */
const DOCKERFILE = scratchDockerfile([
  'RUN mkdir -p /etc /var/log/apt /var/cache/fontconfig /opt && ' +
  'head -c 16 /dev/urandom > /etc/machine-id && ' +
  'head -c 32 /dev/urandom > /var/log/dpkg.log && ' +
  'head -c 32 /dev/urandom > /var/log/apt/history.log && ' +
  'head -c 64 /dev/urandom > /var/cache/fontconfig/0123-le64.cache-9 && ' +
  'head -c 64 /dev/urandom > /var/cache/fontconfig/4567-le64.cache-9 && ' +
  `head -c ${RANDOM_BYTES} /dev/urandom > /opt/random.bin`,
  'COPY stable.txt /opt/stable.txt'
], { applets: ['sh', 'mkdir', 'head'] })

async function largestFile (dir: string): Promise<number> {
  let max = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const s = await stat(join(e.parentPath, e.name)).catch(() => undefined)
    if (s != null && s.size > max) max = s.size
  }
  return max
}

describe.skipIf(!available)('divergence triage over loopback with the real engine', () => {
  let root: string
  let repo: FixtureRepo
  let ids: SigningIdentity[]
  let announcer: SigningIdentity
  const daemons: Daemon[] = []

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-triage-'))
    repo = await createFixtureRepo({ files: { Dockerfile: DOCKERFILE, 'stable.txt': 'the same in every build\n' }, busybox: 'amd64', tag: 'v0.0.1' }, root)
    ids = [generateIdentity(), generateIdentity()]
    announcer = generateIdentity()
  })

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => {})
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('each builder fetches the other\'s file manifest, signs a report with the causes, and no layer crosses the network', async () => {
    const policy = policyFor(ids, [announcer])
    // One build after the other: the second node joins once the first has claimed.
    const a = await startDaemon({ dir: join(root, 'a'), identity: ids[0]!, policy, build: true, manifests: true, http: true })
    daemons.push(a)
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
      expect(claims.every(c => c.claim?.result != null), 'both builds succeed').toBe(true)
      expect(new Set(claims.map(c => c.claim!.result!.manifestDigest)).size, 'the builds differ').toBe(2)
      const [verdict] = await verdictsOf(d, repo.dir, commit)
      expect(verdict!.status).toBe('unreproducible')
    }

    await waitFor('a divergence report on each node', async () => {
      for (const d of daemons) if ((await listReports(d.store)).length < 1) return false
      return true
    }, 60_000)

    for (const [i, d] of daemons.entries()) {
      const [stored] = await listReports(d.store, { tag: 'v0.0.1' })
      // Anyone can verify it: the embedded key, then the policy's.
      const { report, keyId } = verifyDivergenceReport(stored!.envelopeJson, { keys: policy.builderKeys })
      expect(keyId).toBe(ids[i]!.keyId)
      expect(report.a.keyId).toBe(ids[i]!.keyId)
      expect(report.b.keyId).toBe(ids[1 - i]!.keyId)
      const counts = Object.fromEntries(report.causes.map(c => [c.id, c.count]))
      expect(counts).toEqual({ 'machine-id': 1, 'package-logs': 2, 'fontconfig-cache': 2, unknown: 1 })
      expect(report.paths).toEqual({ total: 6, explained: 5 })
      const machineId = report.causes.find(c => c.id === 'machine-id')!
      expect(machineId.fix).toMatch(/rm -f \/etc\/machine-id/)
      expect(machineId.steps[0]).toMatch(/head -c 16 \/dev\/urandom/)
      expect(machineId.paths).toEqual(['etc/machine-id'])
      // What crossed the network: a few hundred bytes of manifest entries, not a 4 MiB layer.
      expect(report.fetched.entries).toBeGreaterThan(6)
      expect(report.fetched.bytes).toBeLessThan(64 * 1024)
    }
    // Nothing layer-sized was written on either node: the tarballs were read for their manifest and removed.
    for (const dir of ['a', 'b']) expect(await largestFile(join(root, dir))).toBeLessThan(RANDOM_BYTES)

    // The API serves the reports, and the JSON Feed lists them.
    const api = await (await fetch(`${a.httpUrl()!}/api/v1/divergences?tag=v0.0.1`)).json() as { items: Array<{ keyId: string, envelope: unknown }> }
    expect(api.items).toHaveLength(1)
    expect(verifyDivergenceReport(api.items[0]!.envelope, { allowEmbeddedKeys: true }).keyId).toBe(ids[0]!.keyId)
    const feed = await (await fetch(`${a.httpUrl()!}/feed.json`)).json() as { items: Array<{ id: string, tags?: string[], content_text: string }> }
    const item = feed.items.find(i => i.id.startsWith('divergence:'))
    expect(item?.tags).toEqual(expect.arrayContaining(['divergence', 'machine-id', 'package-logs', 'fontconfig-cache', 'unknown']))

    // status, from a node's feed and from a stopped node's own store, shows the causes, counts, step and fix.
    const policyFile = join(root, 'policy.json')
    await writeFile(policyFile, JSON.stringify({ version: 1, builders: ids.map((id, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: id.publicKeyPem })), announcers: [{ name: 'announcer', publicKey: announcer.publicKeyPem }], threshold: 2, minOperators: 2, allowedDissent: 0 }))
    const remote = await runCli(['status', 'v0.0.1', '--node', a.httpUrl()!, '--policy', policyFile])
    await b.stop()
    const local = await runCli(['status', 'v0.0.1', '--data-dir', join(root, 'b'), '--policy', policyFile])
    for (const [where, r] of [['a', remote], ['b', local]] as const) {
      expect(r.stdout, where).toMatch(/unreproducible/)
      expect(r.stdout, where).toMatch(/why builds differ .*6 paths, 5 with a known cause/)
      expect(r.stdout, where).toMatch(/package-logs × 2: .*\n\s+step: RUN .*head -c 16 \/dev\/urandom.*\n\s+fix: /)
      expect(r.stdout, where).toMatch(/machine-id × 1: .*etc\/machine-id/)
      expect(r.stdout, where).toMatch(/fontconfig-cache × 2/)
      expect(r.stdout, where).toMatch(/unknown × 1: .*opt\/random\.bin/)
    }
    const json = await runCli(['status', 'v0.0.1', '--data-dir', join(root, 'b'), '--policy', policyFile, '--json'])
    const divergences = (JSON.parse(json.stdout) as { divergences: Array<{ keyId: string, causes: Array<{ id: string, count: number }> }> }).divergences
    expect(divergences.map(d => d.keyId)).toEqual([ids[1]!.keyId])
    expect(divergences[0]!.causes.map(c => [c.id, c.count])).toEqual([['fontconfig-cache', 2], ['package-logs', 2], ['machine-id', 1], ['unknown', 1]])
  }, 400_000)
})
