import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { verifyEnvelope } from '../../src/protocol/dsse.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim, type DecodedMessage } from '../../src/protocol/messages.js'
import { SLSA_VSA_V1 } from '../../src/protocol/types.js'
import { imageResourceUri } from '../../src/protocol/vsa.js'
import { writeIdentity } from '../../src/node/identity-files.js'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import { createStore } from '../../src/node/store/level-store.js'
import type { Store } from '../../src/node/store/types.js'
import { registryAvailable, startRegistry, pushSyntheticImage, type TestRegistry } from '../helpers/registry.js'
import { MAKE_LOG, announcement, claim, imageResult, makeKeys, policyJson, put, seedOneEngineRelease, seedReleases, target, testPolicy, type Keys } from '../http/fixtures.js'

interface Run { code: number, stdout: string, stderr: string }

/** The real CLI, as a user runs it. */
async function cli (args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await neko(['status', ...args], env)
}

async function neko (args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: process.cwd(),
      env: { ...process.env, NEKO_LOG_LEVEL: 'silent', ...env },
      timeout: 60_000
    }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

const V5_COMMIT = 'e'.repeat(40)
const V6_COMMIT = 'f'.repeat(40)

describe('status', () => {
  let keys: Keys
  let dir: string
  let dataDir: string
  let policyFile: string
  let keyDir: string
  let vsaKey: SigningIdentity

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-status-'))
    dataDir = join(dir, 'data')
    const store = await createStore({}, { path: join(dataDir, 'store') })
    await seedReleases(store, keys)
    // v9: only a stranger says which commit it is (an old one, with genuine reproducible claims).
    await put(store, signAnnouncement(announcement('v9', 'd'.repeat(40), [['base', 'linux/amd64']]), keys.stranger))
    await store.close()
    policyFile = join(dir, 'policy.json')
    await writeFile(policyFile, JSON.stringify(policyJson(keys)))
    keyDir = join(dir, 'vsa-key')
    vsaKey = generateIdentity()
    await writeIdentity(keyDir, vsaKey)
  })

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  describe('from a store (--data-dir)', () => {
    it('exits 0 when every target is reproducible', async () => {
      const r = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.stderr).not.toContain('neko-rebuilder:')
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/^VARIANT\s+PLATFORM\s+VERDICT\s+VOTES\s+CONSENSUS DIGEST\s+PUBLISHED$/m)
      expect(r.stdout).toMatch(/base\s+linux\/amd64\s+reproducible\s+2 agree · 2 of 3 answered · need 2\s+sha256:/)
      // No registry check was asked: PUBLISHED says so rather than `unknown`.
      expect(r.stdout).toMatch(/base\s+linux\/amd64\s+reproducible\s.*sha256:\S+\s+-$/m)
      expect(r.stdout).toMatch(/base\s+linux\/arm64\s+reproducible/)
      expect(r.stdout).toContain('overall: reproducible')
    })

    it('exits 1 on dispute and failure, naming dissenters, the first differing layer, failures by class and untrusted claims', async () => {
      const r = await cli(['v1', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(1)
      // One vote each for two digests: neither leads, neither builder "agrees".
      expect(r.stdout).toMatch(/base\s+linux\/arm64\s+disputed\s+split 2 ways · 2 of 3 answered · need 2/)
      expect(r.stdout).toContain(`digest   ${keys.builders[0]!.keyId.slice(0, 12)} (operator-1): ${imageResult('v1 base arm64').manifestDigest}`)
      expect(r.stdout).toContain(`digest   ${keys.builders[2]!.keyId.slice(0, 12)} (operator-3): ${imageResult('v1 base arm64 off', ['base', 'app drifted']).manifestDigest}`)
      expect(r.stdout).toMatch(new RegExp(`first difference from ${keys.builders[0]!.keyId.slice(0, 12)} \\(operator-1\\): layer 1 \\(RUN [^)]*\\): sha256:[0-9a-f]{12} vs sha256:[0-9a-f]{12}`))
      expect(r.stdout).toMatch(/app\s+linux\/amd64\s+failed/)
      expect(r.stdout).toMatch(/failed\s+build-failed × 2: .* at RUN make/)
      expect(r.stdout).toMatch(/failed\s+timeout × 1/)
      // The failed build's own log, its colour codes made harmless.
      expect(r.stdout).toMatch(/log\s+\S+ \(operator-\d\) \(build-failed\), what failed:/)
      expect(r.stdout).toContain('| #7 0.530 ?[31mmain.c:3: error: expected ; before }?[0m')
      expect(r.stdout).toContain('| #7 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2')
      expect(r.stdout).not.toContain('\u001b')
      expect(r.stdout).toContain(`untrusted 1 claim: ${keys.stranger.keyId.slice(0, 12)}`)
      expect(r.stdout).toContain('overall: disputed')
    })

    it('exits 1 when unreproducible, 4 when pending, 2 for an unknown tag', async () => {
      const v2 = await cli(['v2', '--data-dir', dataDir, '--policy', policyFile])
      expect(v2.code).toBe(1)
      expect(v2.stdout).toContain('overall: unreproducible')
      // Three builders, three digests: nobody agrees, nobody is "the" dissenter.
      expect(v2.stdout).toMatch(/base\s+linux\/amd64\s+unreproducible\s+split 3 ways · 3 of 3 answered · need 2/)
      expect(v2.stdout).not.toMatch(/\d agree|dissent/)
      for (const d of ['v2 one', 'v2 two', 'v2 three']) expect(v2.stdout).toContain(`: ${imageResult(d, ['base', d.split(' ')[1]!]).manifestDigest}`)
      expect(v2.stdout.split('\n').filter(l => l.startsWith('    digest '))).toHaveLength(3)
      const v3 = await cli(['v3', '--data-dir', dataDir, '--policy', policyFile])
      expect(v3.code).toBe(4)
      expect(v3.stdout).toContain('overall: pending')
      const unknown = await cli(['v9.9.9', '--data-dir', dataDir, '--policy', policyFile])
      expect(unknown.code).toBe(2)
      expect(unknown.stdout).toBe('')
      expect(unknown.stderr).toContain('no announcement of tag v9.9.9')
    })

    it('shows what failed from a signed log that ends in BuildKit\'s context box, not the box', async () => {
      const store = await createStore({}, { path: join(dataDir, 'store') })
      const commit = '8'.repeat(40)
      try {
        await put(store, signAnnouncement(announcement('v8', commit, [['app', 'linux/amd64']]), keys.maintainer))
        const box = ['------', ' > [2/2] RUN make:', '0.412 cc -o app main.c', '0.530 main.c:3: error: expected ; before }', '------', 'Dockerfile:2', '--------------------',
          '   1 |     FROM busybox', '   2 | >>> RUN make', '   3 |     CMD ["/app"]', '--------------------', 'ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2']
        for (const b of keys.builders) await put(store, signClaim(claim(target(commit, 'app', 'linux/amd64', 'v8'), { failure: 'build-failed', step: 'RUN make', logExcerpt: MAKE_LOG + box.join('\n') + '\n' }), b))
      } finally {
        await store.close()
      }
      const r = await cli(['v8', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(1)
      const log = r.stdout.split('\n').filter(l => l.startsWith('             | ')).map(l => l.slice('             | '.length))
      expect(log).toEqual([
        '#7 [2/2] RUN make',
        '#7 0.412 cc -o app main.c',
        '#7 0.530 ?[31mmain.c:3: error: expected ; before }?[0m',
        '#7 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2',
        'ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2'
      ])
    })

    it('exits 6 with the reason when every builder answered and no quorum can form, never 4', async () => {
      const store = await createStore({}, { path: join(dataDir, 'store') })
      try {
        await seedOneEngineRelease(store, keys, 'v7', '7'.repeat(40))
      } finally {
        await store.close()
      }
      const r = await cli(['v7', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(6)
      expect(r.stdout).toMatch(/base\s+linux\/amd64\s+unsettled\s+1 agree \(\+2 same engine\) · 3 of 3 answered · need 2/)
      expect(r.stdout).toContain('    unsettled: 3 of 3 answered from 1 engine; threshold 2, 2 operators (1 among the votes)')
      expect(r.stdout).toContain('overall: unsettled')
      const json = await cli(['v7', '--data-dir', dataDir, '--policy', policyFile, '--json'])
      expect(json.code).toBe(6)
      expect(JSON.parse(json.stdout)).toMatchObject({ outcome: 'unsettled', status: 'unsettled', targets: [{ status: 'unsettled', reason: '3 of 3 answered from 1 engine; threshold 2, 2 operators (1 among the votes)' }] })
    })

    it('exits 2 and says why when no announcer of the policy announced the tag', async () => {
      const r = await cli(['v9', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(`NoTrustedAnnouncementError: no announcement of tag v9 in the store of ${dataDir} is signed by an announcer of the policy (the only one, for commit ${'d'.repeat(40)}, is signed by ${keys.stranger.keyId})`)
    })

    it('prints JSON with --json', async () => {
      const r = await cli(['v1', '--json', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(1)
      const c = JSON.parse(r.stdout)
      expect(c.tag).toBe('v1')
      expect(c.outcome).toBe('not-reproducible')
      expect(c.targets.map((t: { status: string }) => t.status)).toEqual(['reproducible', 'disputed', 'failed'])
      expect(c.targets[1].dissenting[0].divergence).toMatchObject({ kind: 'layer', index: 1 })
      expect(c.targets[0].agreeing).toHaveLength(3)
      expect(c.targets[0].published).toEqual({ match: 'unknown' })
    })

    it('writes a signed VSA per target that verifies and lists the claims it rests on', async () => {
      const file = join(dir, 'v4.vsa.jsonl')
      const r = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--vsa', file, '--key', keyDir])
      expect(r.code).toBe(0)
      const lines = (await readFile(file, 'utf8')).trimEnd().split('\n')
      expect(lines).toHaveLength(2)
      const store = await createStore({}, { path: join(dataDir, 'store') })
      try {
        for (const line of lines) {
          const v = verifyEnvelope(line, { keys: new Map([[vsaKey.keyId, vsaKey.publicKey]]) })
          expect(v.keyId).toBe(vsaKey.keyId)
          const statement = JSON.parse(Buffer.from(v.payload).toString('utf8'))
          expect(statement.predicateType).toBe(SLSA_VSA_V1)
          expect(statement.predicate.verificationResult).toBe('PASSED')
          // Which policy was applied: its file and the SHA-256 of its bytes.
          expect(statement.predicate.policy).toEqual({ uri: pathToFileURL(policyFile).toString(), digest: { sha256: createHash('sha256').update(await readFile(policyFile)).digest('hex') } })
          const ids: string[] = statement.predicate.inputAttestations.map((a: { digest: { sha256: string } }) => a.digest.sha256)
          expect(ids).toHaveLength(2)
          // Every id names a stored claim for this target.
          for (const id of ids) {
            const m = await store.getMessage(id)
            expect(m?.kind).toBe('claim')
            expect(statement.subject[0].digest.sha256).toBe(m?.kind === 'claim' ? m.claim.result?.manifestDigest.slice('sha256:'.length) : undefined)
          }
        }
      } finally {
        await store.close()
      }
      const failed = join(dir, 'v2.vsa.jsonl')
      const bad = await cli(['v2', '--data-dir', dataDir, '--policy', policyFile, '--vsa', failed, '--key', keyDir])
      expect(bad.code).toBe(1)
      const statement = JSON.parse(Buffer.from(verifyEnvelope((await readFile(failed, 'utf8')).trim(), { keys: new Map([[vsaKey.keyId, vsaKey.publicKey]]) }).payload).toString('utf8'))
      expect(statement.predicate.verificationResult).toBe('FAILED')
    })

    it('verify of a file holding only VSAs shows them, judges nothing and exits 4, not 2', async () => {
      const file = join(dir, 'v4-only.vsa.jsonl')
      expect((await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--vsa', file, '--key', keyDir])).code).toBe(0)
      const r = await neko(['verify', file, '--policy', policyFile])
      expect(r.code).toBe(4)
      expect(r.stderr).toBe('')
      const lines = r.stdout.trimEnd().split('\n')
      expect(lines.filter(l => l.includes(': VSA (not counted): PASSED by urn:neko-rebuilder:key:'))).toHaveLength(2)
      expect(lines.at(-1)).toMatch(/^no claims in the bundle: nothing judged/)
    })

    it('a registry check against a registry that does not answer exits 2 with the reason, never 0', async () => {
      const r = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--registry-check', '--image', 'base=127.0.0.1:9/neko/base'])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toMatch(/^neko-rebuilder: PublishedCheckError: cannot check 127\.0\.0\.1:9\/neko\/base:v4 for linux\/(amd64|arm64): /)
    })

    it('a registry check of a variant without an image exits 2; a variant the release lacks is a usage error', async () => {
      const noImage = await cli(['v1', '--data-dir', dataDir, '--policy', policyFile, '--image', 'base=127.0.0.1:9/neko/base'])
      expect(noImage.code).toBe(2)
      expect(noImage.stdout).toBe('')
      expect(noImage.stderr).toContain('variant app has no published image')
      const noVariant = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--image', 'nosuch=127.0.0.1:9/neko/x'])
      expect(noVariant.code).toBe(3)
      expect(noVariant.stderr).toContain('has no variant "nosuch"')
    })

    it('rejects bad flags with exit 3 (usage), a missing store with 2, each with a clear message', async () => {
      const both = await cli(['v4', '--data-dir', dataDir, '--node', 'http://127.0.0.1:9', '--policy', policyFile])
      expect(both.code).toBe(3)
      expect(both.stderr).toContain('--node')
      const badTag = await cli(['no tag', '--data-dir', dataDir, '--policy', policyFile])
      expect(badTag.code).toBe(3)
      const badImage = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--image', 'base'])
      expect(badImage.code).toBe(3)
      const nostore = await cli(['v4', '--data-dir', join(dir, 'nothing'), '--policy', policyFile])
      expect(nostore.code).toBe(2)
      expect(nostore.stderr).toContain('no node store')
      const nopolicy = await cli(['v4', '--data-dir', join(dir, 'nothing')])
      expect(nopolicy.code).toBe(3)
      expect(nopolicy.stderr).toContain('--policy')
    })
  })

  describe('from a running node (--node)', () => {
    let store: Store
    let server: FeedServer
    let url: string

    beforeAll(async () => {
      store = await createStore({}, { path: join(dataDir, 'store') })
      server = createFeedServer({ store, policy: testPolicy(keys) }, { host: '127.0.0.1', port: 0 })
      url = (await server.start()).url
    })

    afterAll(async () => {
      await server?.stop()
      await store?.close()
    })

    it('says the store is locked and suggests --node', async () => {
      const r = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('locked')
      expect(r.stderr).toContain('--node')
    })

    it('gives the same verdicts and exit codes as the store', async () => {
      const v4 = await cli(['v4', '--node', url, '--policy', policyFile])
      expect(v4.code).toBe(0)
      expect(v4.stdout).toContain('overall: reproducible')
      const v1 = await cli(['v1', '--node', url, '--policy', policyFile, '--json'])
      expect(v1.code).toBe(1)
      expect(JSON.parse(v1.stdout).targets.map((t: { status: string }) => t.status)).toEqual(['reproducible', 'disputed', 'failed'])
      // The bundle carries no receipt times: the claims' own signed times, never 1970.
      expect(JSON.parse(v1.stdout).targets.map((t: { lastClaimAt: string }) => t.lastClaimAt)).toEqual(['2026-11-01T10:05:00.000Z', '2026-11-01T10:05:00.000Z', '2026-11-01T10:05:00.000Z'])
      expect((await cli(['v3', '--node', url, '--policy', policyFile])).code).toBe(4)
      const unknown = await cli(['nope', '--node', url, '--policy', policyFile])
      expect(unknown.code).toBe(2)
      expect(unknown.stdout).toBe('')
      expect(unknown.stderr).toContain('no announcement of tag nope')
    })

    it('ends with how the node is reached when it serves /api/v1/peers, and says nothing of it otherwise', async () => {
      // What a node behind a NAT answers: relayed through one relay, one of three connections relayed.
      const peers = { peerId: '12D3KooWNode', mode: 'relayed', addresses: [], relays: ['12D3KooWRelay'], connections: { direct: 2, relayed: 1 }, relayServer: { serving: false, reservations: 0 }, relayRefused: { rate: 0, penalised: 0 }, peers: [] }
      const withPeers = createFeedServer({ store, policy: testPolicy(keys), peers: () => peers }, { host: '127.0.0.1', port: 0 })
      const peersUrl = (await withPeers.start()).url
      try {
        const text = await cli(['v4', '--node', peersUrl, '--policy', policyFile])
        expect(text.code).toBe(0)
        expect(text.stdout.trim().split('\n').at(-1)).toBe('node: relayed via 12D3KooWRelay; 2 of 3 connections direct')
        const json = await cli(['v4', '--node', peersUrl, '--policy', policyFile, '--json'])
        expect(JSON.parse(json.stdout).node).toMatchObject({ mode: 'relayed', relays: ['12D3KooWRelay'], connections: { direct: 2, relayed: 1 } })
      } finally {
        await withPeers.stop()
      }
      const without = await cli(['v4', '--node', url, '--policy', policyFile])
      expect(without.stdout).not.toContain('node:')
    })

    it('prints the same table and exits the same as verify on the node\'s bundle', async () => {
      const rows = (out: string): string[] => {
        const lines = out.split('\n')
        const from = lines.findIndex(l => l.startsWith('VARIANT'))
        // The header and one row per target; the indented details below them may differ (a bundle's claims are read without their layers).
        return lines.slice(from).filter(l => l !== '' && !l.startsWith(' ') && !l.startsWith('overall'))
      }
      for (const [tag, code] of [['v1', 1], ['v3', 4], ['v4', 0]] as const) {
        const bundle = join(dir, `${tag}.jsonl`)
        await writeFile(bundle, await (await fetch(`${url}/claims.intoto.jsonl?tag=${tag}`)).text())
        const status = await cli([tag, '--node', url, '--policy', policyFile])
        const verify = await neko(['verify', bundle, '--policy', policyFile])
        expect(status.code, tag).toBe(code)
        expect(verify.code, tag).toBe(code)
        expect(rows(status.stdout)[0]).toMatch(/^VARIANT\s+PLATFORM\s+VERDICT\s+VOTES\s+CONSENSUS DIGEST\s+PUBLISHED$/)
        expect(rows(verify.stdout), tag).toEqual(rows(status.stdout))
        expect(verify.stdout.split('\n').filter(l => l.startsWith('overall')), tag).toEqual(status.stdout.split('\n').filter(l => l.startsWith('overall')))
      }
    })

    it('exits 2 and says why when the node has no announcement of the tag by an announcer of the policy', async () => {
      const untrusted = await cli(['v9', '--node', url, '--policy', policyFile, '--json'])
      expect(untrusted.code).toBe(2)
      expect(untrusted.stdout).toBe('')
      expect(untrusted.stderr).toContain(`NoTrustedAnnouncementError: no announcement of tag v9 in ${url} is signed by an announcer of the policy`)
    })

    it('judges by its own policy and drops envelopes that do not verify', async () => {
      // The node serves a claim whose payload was altered after signing: the node's store took it, status must not.
      const honest = signClaim(claim(target('d'.repeat(40), 'base', 'linux/amd64', 'v4'), { result: imageResult('v4 amd64') }), keys.builders[2]!)
      const other = signClaim(claim(target('d'.repeat(40), 'base', 'linux/amd64', 'v4'), { result: imageResult('v4 forged') }), keys.builders[2]!)
      const forged = { ...honest, payload: other.payload }
      // A node that stores what it should not (broken, or hostile): it has to cast past the store's type.
      const decoded = { id: 'f'.repeat(64), keyId: keys.builders[2]!.keyId, kind: 'claim' as const, claim: claim(target('d'.repeat(40), 'base', 'linux/amd64', 'v4'), { result: imageResult('v4 forged') }) }
      await store.putMessage(decoded as unknown as DecodedMessage, JSON.stringify(forged))
      const r = await cli(['v4', '--node', url, '--policy', policyFile, '--json'])
      expect(r.stderr).toMatch(/ignored line \d+ from .*SignatureError/)
      const c = JSON.parse(r.stdout)
      expect(c.targets[0].status).toBe('reproducible')
      expect(c.targets[0].dissenting).toEqual([])

      // A stricter local policy (3 of 3) turns the node's "reproducible" into pending.
      const strict = join(dir, 'strict.json')
      await writeFile(strict, JSON.stringify({ ...(policyJson(keys) as object), threshold: 3, allowedDissent: 0 }))
      const p = await cli(['v4', '--node', url, '--policy', strict])
      expect(p.code).toBe(4)
      expect(p.stdout).toContain('overall: pending')
    })

    it('serves a bundle that `verify` checks offline to the same verdict', async () => {
      const file = join(dir, 'v1.intoto.jsonl')
      await writeFile(file, await (await fetch(`${url}/claims.intoto.jsonl?tag=v1`)).text())
      const r = await neko(['verify', file, '--policy', policyFile, '--json'])
      expect(r.code).toBe(1)
      const statuses = r.stdout.trim().split('\n').map(l => JSON.parse(l) as { status: string, target?: { variant: string, platform: string } })
      expect(statuses.map(v => v.status).sort()).toEqual(['disputed', 'failed', 'reproducible'])
    })

    it('fails clearly when the node cannot be reached', async () => {
      const r = await cli(['v4', '--node', 'http://127.0.0.1:9', '--policy', policyFile])
      expect(r.code).toBe(2)
      expect(r.stderr).toContain('unreachable')
    })
  })

  const registry = registryAvailable('status --registry-check')
  describe.skipIf(!registry)('published digest against a real registry', () => {
    let reg: TestRegistry
    let amd64: string
    let arm64: string
    let regDataDir: string

    beforeAll(async () => {
      reg = await startRegistry()
      const pushed = await pushSyntheticImage(reg.url, 'neko/base', 'v5', { platforms: ['linux/amd64', 'linux/arm64'] })
      amd64 = pushed.images.find(i => i.platform === 'linux/amd64')!.manifestDigest
      arm64 = pushed.images.find(i => i.platform === 'linux/arm64')!.manifestDigest
      await pushSyntheticImage(reg.url, 'neko/base', 'v6', { platforms: ['linux/amd64'], salt: 'v6' })
      regDataDir = join(dir, 'registry-data')
      const store = await createStore({}, { path: join(regDataDir, 'store') })
      const [b1, b2] = keys.builders as [SigningIdentity, SigningIdentity]
      const result = (manifestDigest: string): ReturnType<typeof imageResult> => ({ ...imageResult(manifestDigest), manifestDigest })
      // v5: both platforms rebuilt to exactly what the registry serves.
      await put(store, signAnnouncement(announcement('v5', V5_COMMIT, [['base', 'linux/amd64'], ['base', 'linux/arm64']]), keys.maintainer))
      for (const b of [b1, b2]) {
        await put(store, signClaim(claim(target(V5_COMMIT, 'base', 'linux/amd64', 'v5'), { result: result(amd64) }), b))
        await put(store, signClaim(claim(target(V5_COMMIT, 'base', 'linux/arm64', 'v5'), { result: result(arm64) }), b))
      }
      // v6: reproducible among builders, but not what the registry serves.
      await put(store, signAnnouncement(announcement('v6', V6_COMMIT, [['base', 'linux/amd64']]), keys.maintainer))
      for (const b of [b1, b2]) await put(store, signClaim(claim(target(V6_COMMIT, 'base', 'linux/amd64', 'v6'), { result: imageResult('v6 rebuilt') }), b))
      await store.close()
    })

    afterAll(async () => {
      await reg?.stop()
    })

    it('exits 0 when the agreed digests are the published ones', async () => {
      const r = await cli(['v5', '--data-dir', regDataDir, '--policy', policyFile, '--registry-check', '--image', `base=${reg.host}/neko/base`, '--json'])
      expect(r.stderr).not.toMatch(/Error/)
      expect(r.code).toBe(0)
      const c = JSON.parse(r.stdout)
      expect(c.targets.map((t: { published: unknown }) => t.published)).toEqual([{ digest: amd64, match: 'yes' }, { digest: arm64, match: 'yes' }])
    })

    it('exits 1 when the registry serves another digest', async () => {
      const r = await cli(['v6', '--data-dir', regDataDir, '--policy', policyFile, '--image', `base=${reg.host}/neko/base`])
      expect(r.code).toBe(1)
      expect(r.stdout).toMatch(/base\s+linux\/amd64\s+reproducible.*MISMATCH/)
      // The last line agrees with the exit status.
      expect(r.stdout).toContain('overall: MISMATCH (1 target reproducible to another digest than the registry publishes)')
      expect(r.stdout).not.toContain('overall: reproducible')
    })

    it('--vsa with a registry check summarises the image verified: subject and resourceUri name it by digest', async () => {
      const statements = async (tag: string): Promise<Array<{ subject: Array<{ name: string, digest: { sha256: string } }>, predicate: { resourceUri: string, verificationResult: string } }>> => {
        const file = join(dir, `${tag}.image.vsa.jsonl`)
        await cli([tag, '--data-dir', regDataDir, '--policy', policyFile, '--image', `base=${reg.host}/neko/base`, '--vsa', file, '--key', keyDir])
        return (await readFile(file, 'utf8')).trimEnd().split('\n').map(l => JSON.parse(Buffer.from(verifyEnvelope(l, { keys: new Map([[vsaKey.keyId, vsaKey.publicKey]]) }).payload).toString('utf8')))
      }
      const v5 = await statements('v5')
      expect(v5.map(s => [s.subject[0]?.name, `sha256:${s.subject[0]?.digest.sha256 ?? ''}`, s.predicate.resourceUri, s.predicate.verificationResult])).toEqual([amd64, arm64].map(d =>
        [`${reg.host}/neko/base`, d, imageResourceUri(`${reg.host}/neko/base`, d), 'PASSED']))
      // Rebuilt alike, but not to what the registry serves: a FAILED summary of the image served.
      const v6 = await statements('v6')
      expect(v6).toHaveLength(1)
      expect(v6[0]?.predicate.resourceUri).toMatch(/^pkg:oci\/base@sha256%3A[0-9a-f]{64}\?repository_url=/)
      expect(v6[0]?.predicate.verificationResult).toBe('FAILED')
    })

    it('exits 2 with the reason for an image the registry does not have, never 0 with unknown', async () => {
      // The --node suite has closed dataDir's store again by now.
      const r = await cli(['v4', '--data-dir', dataDir, '--policy', policyFile, '--image', `base=${reg.host}/neko/base`, '--json'])
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).toContain(`cannot check ${reg.host}/neko/base:v4 for linux/`)
      const platform = await cli(['v5', '--data-dir', regDataDir, '--policy', policyFile, '--image', `base=${reg.host}/neko/base`])
      expect(platform.code).toBe(0)
      expect(platform.stdout).toMatch(/base\s+linux\/amd64\s+reproducible.*matches$/m)
    })
  })
})
