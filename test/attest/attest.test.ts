import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim, signStatement } from '../../src/protocol/messages.js'
import type { Statement } from '../../src/protocol/statement.js'
import { STATEMENT_TYPE } from '../../src/protocol/types.js'
import { imageResourceUri, QUORUM_FIELD, REPRODUCIBLE_LEVEL, verifierIdOf } from '../../src/protocol/vsa.js'
import { createAttestationPublisher } from '../../src/node/attest/index.js'
import { silentLogger } from '../../src/node/logger.js'
import { createRegistryWriter, parseReference } from '../../src/node/registry/index.js'
import { writeIdentity } from '../../src/node/identity-files.js'
import { createStore } from '../../src/node/store/level-store.js'
import { pushBlob, pushManifest, pushSyntheticImage, registryAvailable, sha256, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { announcement, claim, imageResult, makeKeys, policyJson, put, target, type Keys } from '../http/fixtures.js'

interface Run { code: number, stdout: string, stderr: string }

async function run (file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise(resolve => {
    execFile(file, args, { cwd: process.cwd(), env: { ...process.env, NEKO_LOG_LEVEL: 'silent', ...env }, timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

const neko = async (args: string[], env: Record<string, string> = {}): Promise<Run> => await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], env)

const COSIGN = process.env.NEKO_COSIGN_BIN ?? '/usr/bin/cosign'
const ORAS = process.env.NEKO_ORAS_BIN ?? '/usr/bin/oras'
const VSA_TYPE = 'https://slsa.dev/verification_summary/v1'

function toolsAvailable (): boolean {
  if (existsSync(COSIGN) && existsSync(ORAS)) return true
  if (process.env.NEKO_REQUIRE_REGISTRY === '1') throw new Error(`attest: NEKO_REQUIRE_REGISTRY=1 but ${COSIGN} or ${ORAS} is missing`)
  process.stderr.write(`[skip] attest: ${COSIGN} or ${ORAS} missing; run scripts/setup-host.sh\n`)
  return false
}

const cosign = async (reg: TestRegistry, image: string, key: string, policy?: string): Promise<Run> =>
  await run(COSIGN, ['verify-attestation', '--key', key, '--type', VSA_TYPE, '--insecure-ignore-tlog', '--allow-http-registry',
    ...(policy !== undefined ? ['--policy', policy] : []), `${reg.host}/${image}`], { COSIGN_EXPERIMENTAL: '0', SIGSTORE_NO_CACHE: '1', HOME: tmpdir() })

/** The shipped CUE policy (a passing VSA, at least 2 agreeing operators), asking for `k` operators instead. */
async function cuePolicy (k: number): Promise<string> {
  const shipped = await readFile('deploy/admission/reproducible.cue', 'utf8')
  expect(shipped).toContain('agreeingOperators!: int & >=2')
  return shipped.replace('agreeingOperators!: int & >=2', `agreeingOperators!: int & >=${k}`)
}

const C1 = '1'.repeat(40)
const C2 = '2'.repeat(40)
const C9 = '9'.repeat(40)

const available = registryAvailable('attest') && toolsAvailable()

// Each test runs the CLI, cosign and oras several times: on a loaded machine that takes minutes.
describe.skipIf(!available)('attestations on a real registry, checked by cosign and oras', { timeout: 180_000 }, () => {
  let keys: Keys
  let dir: string
  let dataDir: string
  let policyFile: string
  let keyDir: string
  let vsaKey: SigningIdentity
  let vsaPub: string
  let reg: TestRegistry
  let v1: { amd64: string, arm64: string }
  let v2: string
  let v9: string

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-attest-'))
    dataDir = join(dir, 'data')
    policyFile = join(dir, 'policy.json')
    await writeFile(policyFile, JSON.stringify(policyJson(keys)))
    keyDir = join(dir, 'signer')
    vsaKey = generateIdentity()
    await writeIdentity(keyDir, vsaKey)
    vsaPub = join(keyDir, 'public.pem')
    await writeFile(join(dir, 'k2.cue'), await cuePolicy(2))
    await writeFile(join(dir, 'k3.cue'), await cuePolicy(3))

    reg = await startRegistry()
    const p1 = await pushSyntheticImage(reg.url, 'neko/base', 'v1', { platforms: ['linux/amd64', 'linux/arm64'] })
    v1 = { amd64: p1.images[0]!.manifestDigest, arm64: p1.images[1]!.manifestDigest }
    v2 = (await pushSyntheticImage(reg.url, 'neko/base', 'v2', { platforms: ['linux/amd64'], salt: 'v2' })).images[0]!.manifestDigest

    const store = await createStore({}, { path: join(dataDir, 'store') })
    const [b1, b2, b3] = keys.builders as [SigningIdentity, SigningIdentity, SigningIdentity]
    const result = (d: string): ReturnType<typeof imageResult> => ({ ...imageResult(d), manifestDigest: d })
    // v1: both platforms rebuilt by two operators to exactly what the registry serves; a stranger disagrees.
    await put(store, signAnnouncement(announcement('v1', C1, [['base', 'linux/amd64'], ['base', 'linux/arm64']]), keys.maintainer))
    for (const b of [b1, b2]) {
      await put(store, signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: result(v1.amd64) }), b))
      await put(store, signClaim(claim(target(C1, 'base', 'linux/arm64', 'v1'), { result: result(v1.arm64) }), b))
    }
    await put(store, signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: imageResult('stranger') }), keys.stranger))
    // v2: three builders, three digests: unreproducible.
    await put(store, signAnnouncement(announcement('v2', C2, [['base', 'linux/amd64']]), keys.maintainer))
    await put(store, signClaim(claim(target(C2, 'base', 'linux/amd64', 'v2'), { result: result(v2) }), b1))
    await put(store, signClaim(claim(target(C2, 'base', 'linux/amd64', 'v2'), { result: imageResult('v2 other') }), b2))
    await put(store, signClaim(claim(target(C2, 'base', 'linux/amd64', 'v2'), { result: imageResult('v2 third') }), b3))
    // v9: only a stranger announced it, with claims that would pass.
    await put(store, signAnnouncement(announcement('v9', C9, [['base', 'linux/amd64']]), keys.stranger))
    v9 = (await pushSyntheticImage(reg.url, 'neko/base', 'v9', { platforms: ['linux/amd64'], salt: 'v9' })).images[0]!.manifestDigest
    for (const b of [b1, b2]) await put(store, signClaim(claim(target(C9, 'base', 'linux/amd64', 'v9'), { result: result(v9) }), b))
    await store.close()
  })

  afterAll(async () => {
    await reg?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const attest = async (tag: string, extra: string[] = []): Promise<Run> =>
    await neko(['attest', tag, '--data-dir', dataDir, '--policy', policyFile, '--key', keyDir, '--image', `base=${reg.host}/neko/base`, ...extra])

  async function referrers (digest: string): Promise<Array<{ artifactType: string, digest: string }>> {
    const r = await run(ORAS, ['discover', '--plain-http', '--format', 'json', `${reg.host}/neko/base@${digest}`])
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout) as { manifests?: Array<{ artifactType: string, digest: string }>, referrers?: Array<{ artifactType: string, digest: string }> }
    return out.manifests ?? out.referrers ?? []
  }

  it('attaches a VSA and the claims to each per-platform manifest, listed by oras discover', async () => {
    const r = await attest('v1')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`base linux/amd64 ${reg.host}/neko/base@${v1.amd64} PASSED: VSA pushed, 3 claims \\(3 new\\), referrers in tag sha256-`))
    expect(r.stdout).toContain(`base linux/arm64 ${reg.host}/neko/base@${v1.arm64} PASSED`)
    // The index the tag names gets a summary too: it passes since both of its images did.
    expect(r.stdout).toMatch(new RegExp(`index all ${reg.host}/neko/base@sha256:[0-9a-f]{64} PASSED: VSA pushed, 0 claims`))
    for (const d of [v1.amd64, v1.arm64]) {
      const listed = await referrers(d)
      const types = listed.map(m => m.artifactType).sort()
      expect(types.filter(t => t === 'application/vnd.neko-rebuilder.vsa.v1+json')).toHaveLength(1)
      expect(types.filter(t => t === 'application/vnd.neko-rebuilder.claim.v1+json')).toHaveLength(d === v1.amd64 ? 3 : 2)
    }
  })

  it('cosign verifies the Ed25519-signed VSA, and a CUE policy demanding PASSED and 2 operators admits it', async () => {
    const plain = await cosign(reg, `neko/base@${v1.amd64}`, vsaPub)
    expect(plain.stderr).not.toMatch(/Error/)
    expect(plain.code).toBe(0)
    const payloads = plain.stdout.trim().split('\n').map(l => JSON.parse(Buffer.from((JSON.parse(l) as { payload: string }).payload, 'base64').toString()) as { predicate: { verifier: { id: string } } })
    expect(payloads.map(p => p.predicate.verifier.id)).toEqual([`urn:neko-rebuilder:key:${vsaKey.keyId}`])
    const k2 = await cosign(reg, `neko/base@${v1.amd64}`, vsaPub, join(dir, 'k2.cue'))
    expect(k2.stderr).not.toMatch(/Error/)
    expect(k2.code).toBe(0)
    expect((await cosign(reg, `neko/base@${v1.arm64}`, vsaPub, join(dir, 'k2.cue'))).code).toBe(0)
    // By tag: cosign checks the index, whose summary passes only when every platform did.
    expect((await cosign(reg, 'neko/base:v1', vsaPub, join(dir, 'k2.cue'))).code).toBe(0)
    // Three operators are more than agreed: refused.
    const k3 = await cosign(reg, `neko/base@${v1.amd64}`, vsaPub, join(dir, 'k3.cue'))
    expect(k3.code).not.toBe(0)
    // Another key did not sign it.
    const stranger = join(dir, 'stranger.pem')
    await writeFile(stranger, keys.stranger.publicKeyPem)
    expect((await cosign(reg, `neko/base@${v1.amd64}`, stranger)).code).not.toBe(0)
  })

  it('the shipped CUE policy refuses a signed VSA that lacks verificationResult, or its counts', async () => {
    // The policy-controller manifest carries the same CUE, line for line.
    const shipped = (await readFile('deploy/admission/reproducible.cue', 'utf8')).split('\n').filter(l => l !== '' && !l.startsWith('//'))
    const manifest = await readFile('deploy/admission/policy-controller-cluster-image-policy.yaml', 'utf8')
    for (const l of shipped) expect(manifest).toContain(`              ${l}\n`)

    const image = (await pushSyntheticImage(reg.url, 'neko/base', 'no-result', { platforms: ['linux/amd64'], salt: 'no-result' })).images[0]!
    const ref = parseReference(`${reg.host}/neko/base:no-result`)
    const writer = createRegistryWriter({ logger: silentLogger() }, { timeoutMs: 30_000 })
    const log = silentLogger().forComponent('attest-test')
    const got = await writer.getManifest(ref, image.manifestDigest)
    if (got === undefined) throw new Error('pushed image not found')
    const quorum = { threshold: 2, agreeingBuilders: 2, agreeingOperators: 2, operators: ['operator-1', 'operator-2'] }
    const statement = (drop: 'verificationResult' | typeof QUORUM_FIELD): Statement => {
      const predicate: Record<string, unknown> = {
        verifier: { id: verifierIdOf(vsaKey.keyId) },
        timeVerified: '2026-01-01T00:00:00Z',
        resourceUri: imageResourceUri(`${reg.host}/neko/base`, image.manifestDigest),
        policy: { uri: 'file:///policy.json' },
        verificationResult: 'PASSED',
        verifiedLevels: [REPRODUCIBLE_LEVEL],
        [QUORUM_FIELD]: quorum
      }
      delete predicate[drop]
      return { _type: STATEMENT_TYPE, subject: [{ name: `${reg.host}/neko/base`, digest: { sha256: image.manifestDigest.slice('sha256:'.length) } }], predicateType: VSA_TYPE, predicate }
    }
    const publisher = createAttestationPublisher({ writer, log })
    await publisher.attach(ref, { mediaType: got.mediaType, digest: got.digest, size: got.bytes.byteLength }, [{
      kind: 'vsa', envelope: new TextEncoder().encode(JSON.stringify(signStatement(statement('verificationResult'), vsaKey))), predicateType: VSA_TYPE, signer: vsaKey.keyId, target: 'no-result'
    }])
    // The signature is good: without a policy cosign accepts it; the policy refuses it.
    expect((await cosign(reg, `neko/base@${image.manifestDigest}`, vsaPub)).code).toBe(0)
    const refused = await cosign(reg, `neko/base@${image.manifestDigest}`, vsaPub, join(dir, 'k2.cue'))
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/verificationResult/)

    const image2 = (await pushSyntheticImage(reg.url, 'neko/base', 'no-quorum', { platforms: ['linux/amd64'], salt: 'no-quorum' })).images[0]!
    const ref2 = parseReference(`${reg.host}/neko/base:no-quorum`)
    const got2 = await writer.getManifest(ref2, image2.manifestDigest)
    if (got2 === undefined) throw new Error('pushed image not found')
    const s2 = statement(QUORUM_FIELD)
    s2.subject = [{ name: `${reg.host}/neko/base`, digest: { sha256: image2.manifestDigest.slice('sha256:'.length) } }]
    await publisher.attach(ref2, { mediaType: got2.mediaType, digest: got2.digest, size: got2.bytes.byteLength }, [{
      kind: 'vsa', envelope: new TextEncoder().encode(JSON.stringify(signStatement(s2, vsaKey))), predicateType: VSA_TYPE, signer: vsaKey.keyId, target: 'no-quorum'
    }])
    expect((await cosign(reg, `neko/base@${image2.manifestDigest}`, vsaPub, join(dir, 'k2.cue'))).code).not.toBe(0)
  })

  it('is idempotent: a re-run adds nothing and keeps everything', async () => {
    const before = await referrers(v1.amd64)
    const r = await attest('v1')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/base linux\/amd64 .* PASSED: VSA unchanged, 3 claims \(0 new\)/)
    expect(r.stdout).toMatch(/index all .* PASSED: VSA unchanged/)
    const after = await referrers(v1.amd64)
    expect(after.map(m => m.digest).sort()).toEqual(before.map(m => m.digest).sort())
    expect((await cosign(reg, `neko/base@${v1.amd64}`, vsaPub, join(dir, 'k2.cue'))).code).toBe(0)
  })

  it('verify-image recomputes the quorum from the registry alone', async () => {
    const r = await neko(['verify-image', `${reg.host}/neko/base:v1`, '--policy', policyFile])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`${reg.host}/neko/base@${v1.amd64} (linux/amd64): PASS`)
    expect(r.stdout).toContain(`${reg.host}/neko/base@${v1.arm64} (linux/arm64): PASS`)
    expect(r.stdout).toContain(`untrusted (not counted): ${keys.stranger.keyId.slice(0, 16)}`)
    expect(r.stdout).toMatch(/VSA \(not counted\): PASSED by urn:neko-rebuilder:key:/)
    const json = await neko(['verify-image', `${reg.host}/neko/base:v1`, '--policy', policyFile, '--platform', 'linux/arm64', '--json'])
    expect(json.code).toBe(0)
    const j = JSON.parse(json.stdout)
    expect(j.outcome).toBe('ok')
    expect(j.images).toHaveLength(1)
    expect(j.images[0].verdicts[0].operators).toEqual(['operator-1', 'operator-2'])
    // A stricter policy (3 of 3) makes the same attestations pending.
    const strict = join(dir, 'strict.json')
    await writeFile(strict, JSON.stringify({ ...(policyJson(keys) as object), threshold: 3 }))
    expect((await neko(['verify-image', `${reg.host}/neko/base:v1`, '--policy', strict])).code).toBe(4)
  })

  it('an unreproducible release gets a FAILED VSA that the policy refuses, and verify-image exits 1', async () => {
    const r = await attest('v2')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`base linux/amd64 ${reg.host}/neko/base@${v2} FAILED`)
    const plain = await cosign(reg, `neko/base@${v2}`, vsaPub)
    expect(plain.code).toBe(0)
    // As VSA v1 reads: the image verified is the resource, a failure is the level FAILED.
    const failed = JSON.parse(Buffer.from((JSON.parse(plain.stdout.trim().split('\n')[0]!) as { payload: string }).payload, 'base64').toString()) as { predicate: Record<string, unknown> }
    expect(failed.predicate.verifiedLevels).toEqual(['FAILED'])
    expect(failed.predicate.resourceUri).toBe(imageResourceUri(`${reg.host}/neko/base`, v2))
    expect(failed.predicate[QUORUM_FIELD]).toMatchObject({ threshold: 2 })
    const refused = await cosign(reg, `neko/base@${v2}`, vsaPub, join(dir, 'k2.cue'))
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/validation error|conflicting values/)
    expect((await cosign(reg, 'neko/base:v2', vsaPub, join(dir, 'k2.cue'))).code).not.toBe(0)
    const v = await neko(['verify-image', `${reg.host}/neko/base:v2`, '--policy', policyFile])
    expect(v.code).toBe(1)
    expect(v.stdout).toMatch(/unreproducible/)
  })

  it('an image with one changed byte and the attestations copied onto it is refused', async () => {
    // The amd64 manifest of v1 with one byte changed, pushed with the v1 attestations copied to its tags.
    const original = await (await fetch(`${reg.url}/v2/neko/base/manifests/${v1.amd64}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer()
    const text = Buffer.from(original).toString()
    const changed = Buffer.from(text.replace('"schemaVersion":2', '"schemaVersion":2 '))
    expect(changed.byteLength).toBe(original.byteLength + 1)
    const forged = await pushManifest(reg.url, 'neko/base', 'forged', changed, 'application/vnd.oci.image.manifest.v1+json')
    for (const suffix of ['', '.att']) {
      const res = await fetch(`${reg.url}/v2/neko/base/manifests/${v1.amd64.replace(':', '-')}${suffix}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } })
      const bytes = Buffer.from(await res.arrayBuffer())
      await pushManifest(reg.url, 'neko/base', `${forged.replace(':', '-')}${suffix}`, bytes, res.headers.get('content-type') ?? '')
    }
    const c = await cosign(reg, `neko/base@${forged}`, vsaPub, join(dir, 'k2.cue'))
    expect(c.code).not.toBe(0)
    const v = await neko(['verify-image', `${reg.host}/neko/base@${forged}`, '--policy', policyFile, '--platform', 'linux/amd64'])
    expect(v.code).not.toBe(0)
    expect(v.stdout).toContain('an attestation for another image')
    expect(v.stdout).toContain(`@${forged} (linux/amd64): FAIL`)
  })

  it('shows a forged or untrusted claim among good ones and never counts it', async () => {
    // A claim whose payload was changed after signing, attached as a referrer of v1 amd64.
    const honest = signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: { ...imageResult(v1.amd64), manifestDigest: v1.amd64 } }), keys.builders[2]!)
    const other = signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: imageResult('forged') }), keys.builders[2]!)
    const forgedEnv = Buffer.from(JSON.stringify({ ...honest, payload: other.payload }))
    const envDigest = await pushBlob(reg.url, 'neko/base', forgedEnv)
    const empty = await pushBlob(reg.url, 'neko/base', Buffer.from('{}'))
    const subjectSize = (await (await fetch(`${reg.url}/v2/neko/base/manifests/${v1.amd64}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer()).byteLength
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.neko-rebuilder.claim.v1+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
      layers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', digest: envDigest, size: forgedEnv.byteLength }],
      subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: v1.amd64, size: subjectSize }
    }))
    const md = await pushManifest(reg.url, 'neko/base', sha256(manifest), manifest, 'application/vnd.oci.image.manifest.v1+json')
    const tag = v1.amd64.replace(':', '-')
    const index = JSON.parse(Buffer.from(await (await fetch(`${reg.url}/v2/neko/base/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })).arrayBuffer()).toString())
    index.manifests.push({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.byteLength, artifactType: 'application/vnd.neko-rebuilder.claim.v1+json' })
    await pushManifest(reg.url, 'neko/base', tag, Buffer.from(JSON.stringify(index)), 'application/vnd.oci.image.index.v1+json')

    const r = await neko(['verify-image', `${reg.host}/neko/base@${v1.amd64}`, '--policy', policyFile, '--platform', 'linux/amd64', '--json'])
    expect(r.code).toBe(0)
    const j = JSON.parse(r.stdout).images[0]
    expect(j.rejected.map((x: { source: string, reason: string }) => `${x.source} ${x.reason}`).join('\n')).toMatch(new RegExp(`referrer ${md} SignatureError`))
    expect(j.verdicts[0].agreeing).toHaveLength(2)
    expect(j.verdicts[0].dissenting).toHaveLength(0)
    // A later attest keeps the foreign referrer: nothing pushed is lost.
    expect((await attest('v1')).code).toBe(0)
    expect((await referrers(v1.amd64)).map(m => m.digest)).toContain(md)
  })

  it('an image whose attestations are all forged or about another image is an error of its own, each envelope named', async () => {
    const image = (await pushSyntheticImage(reg.url, 'neko/base', 'all-forged', { platforms: ['linux/amd64'], salt: 'all-forged' })).images[0]!
    const ref = parseReference(`${reg.host}/neko/base:all-forged`)
    const writer = createRegistryWriter({ logger: silentLogger() }, { timeoutMs: 30_000 })
    const got = await writer.getManifest(ref, image.manifestDigest)
    if (got === undefined) throw new Error('pushed image not found')
    // A trusted builder's claim about this image, its payload changed after signing.
    const honest = signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: { ...imageResult(image.manifestDigest), manifestDigest: image.manifestDigest } }), keys.builders[0]!)
    const other = signClaim(claim(target(C1, 'base', 'linux/amd64', 'v1'), { result: imageResult('other') }), keys.builders[0]!)
    const forged = new TextEncoder().encode(JSON.stringify({ ...honest, payload: other.payload }))
    // A genuine PASSED summary, about v1's image, copied here.
    const copied = new TextEncoder().encode(JSON.stringify(signStatement({
      _type: STATEMENT_TYPE,
      subject: [{ name: `${reg.host}/neko/base`, digest: { sha256: v1.amd64.slice('sha256:'.length) } }],
      predicateType: VSA_TYPE,
      predicate: { verifier: { id: verifierIdOf(vsaKey.keyId) }, verificationResult: 'PASSED', verifiedLevels: [REPRODUCIBLE_LEVEL] }
    }, vsaKey)))
    await createAttestationPublisher({ writer, log: silentLogger().forComponent('attest-test') }).attach(ref, { mediaType: got.mediaType, digest: got.digest, size: got.bytes.byteLength }, [
      { kind: 'claim', envelope: forged, predicateType: 'https://slsa.dev/provenance/v1', signer: keys.builders[0]!.keyId, target: 'x' },
      { kind: 'vsa', envelope: copied, predicateType: VSA_TYPE, signer: vsaKey.keyId, target: 'x' }
    ])
    const r = await neko(['verify-image', `${reg.host}/neko/base@${image.manifestDigest}`, '--policy', policyFile, '--platform', 'linux/amd64'])
    expect(r.code).toBe(7)
    expect(r.stdout).toContain(`@${image.manifestDigest} (linux/amd64): FORGED`)
    expect(r.stdout).toMatch(new RegExp(`rejected \\(not counted\\): envelope ${sha256(forged)} in referrer sha256:[0-9a-f]{64}: SignatureError`))
    expect(r.stdout).toMatch(new RegExp(`VSA about another image \\(${reg.host}/neko/base@${v1.amd64.slice(0, 'sha256:'.length + 12)}\\) \\(not counted\\): PASSED by .* envelope ${sha256(copied)} in `))
    // An image nobody has attested yet still reads as pending.
    const bare = (await pushSyntheticImage(reg.url, 'neko/base', 'bare', { platforms: ['linux/amd64'], salt: 'bare' })).images[0]!
    expect((await neko(['verify-image', `${reg.host}/neko/base@${bare.manifestDigest}`, '--policy', policyFile, '--platform', 'linux/amd64'])).code).toBe(4)
  })

  it('verify-image of an image every trusted builder rebuilt on one engine is UNSETTLED, exit 6, with the reason, never pending', async () => {
    const c6 = '6'.repeat(40)
    const d6 = (await pushSyntheticImage(reg.url, 'neko/base', 'v6', { platforms: ['linux/amd64'], salt: 'v6 one engine' })).images[0]!.manifestDigest
    const store = await createStore({}, { path: join(dataDir, 'store') })
    try {
      await put(store, signAnnouncement(announcement('v6', c6, [['base', 'linux/amd64']]), keys.maintainer))
      for (const b of keys.builders) {
        const c = claim(target(c6, 'base', 'linux/amd64', 'v6'), { result: { ...imageResult(d6), manifestDigest: d6 } })
        c.environment.engine.id = 'ONE:ENGINE'
        await put(store, signClaim(c, b))
      }
    } finally {
      await store.close()
    }
    const attested = await attest('v6')
    expect(attested.code, attested.stderr).toBe(0)
    const r = await neko(['verify-image', `${reg.host}/neko/base@${d6}`, '--policy', policyFile, '--platform', 'linux/amd64'])
    expect(r.code, r.stdout + r.stderr).toBe(6)
    expect(r.stdout).toContain(`@${d6} (linux/amd64): UNSETTLED`)
    expect(r.stdout).toContain('3 of 3 answered from 1 engine; threshold 2')
  })

  it('attests nothing for a tag only an untrusted key announced, as status refuses it', async () => {
    const r = await attest('v9')
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(`NoTrustedAnnouncementError: no announcement of tag v9 in the store of ${dataDir} is signed by an announcer of the policy (the only one, for commit ${C9}, is signed by ${keys.stranger.keyId})`)
    expect(await referrers(v9)).toEqual([])
    const status = await neko(['status', 'v9', '--data-dir', dataDir, '--policy', policyFile])
    expect(status.code).toBe(2)
    expect(status.stderr).toContain('NoTrustedAnnouncementError')
  })

  it('refuses clearly when the registry cannot be reached', async () => {
    const down = await neko(['attest', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--key', keyDir, '--image', 'base=127.0.0.1:9/neko/base'])
    expect(down.code).toBe(2)
    expect(down.stderr).toContain('RegistryUnreachableError')
  })

  it('refuses clearly when the registry refuses the push, and loses nothing', async () => {
    const readonly = await startRegistry({ readonlyOf: reg })
    try {
      const before = await referrers(v1.arm64)
      // A new signer makes a new VSA, which the read-only registry must refuse.
      const other = join(dir, 'other-signer')
      await writeIdentity(other, generateIdentity())
      const refused = await neko(['attest', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--key', other, '--image', `base=${readonly.host}/neko/base`])
      expect(refused.code).toBe(2)
      expect(refused.stderr).toMatch(/RegistryPushError: .*refused the push: HTTP 405/)
      expect((await referrers(v1.arm64)).map(m => m.digest).sort()).toEqual(before.map(m => m.digest).sort())
    } finally {
      await readonly.stop()
    }
  })

  it('asks for credentials clearly, refuses wrong ones, and pushes with the right ones', async () => {
    const basic = await startRegistry({ htpasswd: 'neko:$2b$05$2OLaJH4GUXBoBsknJHpZTeU03SmmHjjA95m.7cZrQNXkVJTUR2WPS\n' })
    try {
      const authorization = `Basic ${Buffer.from('neko:neko-attest-secret').toString('base64')}`
      await pushSyntheticImage(basic.url, 'neko/base', 'v1', { platforms: ['linux/amd64', 'linux/arm64'], authorization })
      const anonymous = await neko(['attest', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--key', keyDir, '--image', `base=${basic.host}/neko/base`])
      expect(anonymous.code).toBe(2)
      expect(anonymous.stderr).toContain('asks for Basic credentials and none were given (--registry-auth)')
      const auth = join(dir, 'config.json')
      await writeFile(auth, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('neko:wrong').toString('base64') } } }))
      const wrong = await neko(['attest', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--key', keyDir, '--image', `base=${basic.host}/neko/base`, '--registry-auth', auth])
      expect(wrong.code).toBe(2)
      expect(wrong.stderr).toContain('refused the credentials of neko')
      await writeFile(auth, JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('neko:neko-attest-secret').toString('base64') } } }))
      const ok = await neko(['attest', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--key', keyDir, '--image', `base=${basic.host}/neko/base`, '--registry-auth', auth])
      expect(ok.stderr).toBe('')
      expect(ok.code).toBe(0)
      // The same images as the first registry's: the same verdicts.
      expect(ok.stdout).toMatch(/base linux\/amd64 \S+ PASSED: VSA pushed/)
      const v = await neko(['verify-image', `${basic.host}/neko/base:v1`, '--policy', policyFile, '--registry-auth', auth])
      expect(v.code).toBe(0)
    } finally {
      await basic.stop()
    }
  })

  it('verify accepts the VSAs status writes, shows them and counts only the claims', async () => {
    const vsaFile = join(dir, 'v1.vsa.jsonl')
    expect((await neko(['status', 'v1', '--data-dir', dataDir, '--policy', policyFile, '--vsa', vsaFile, '--key', keyDir])).code).toBe(0)
    const store = await createStore({}, { path: join(dataDir, 'store') })
    const claims = (await store.claimsForCommit('https://github.com/m1k1o/neko', C1)).map(m => m.envelopeJson)
    // The release's announcement too: without a trusted one, verify names no release.
    const announcements = (await store.announcements({ tag: 'v1' })).map(m => m.envelopeJson)
    await store.close()
    const bundle = join(dir, 'v1.bundle.jsonl')
    await writeFile(bundle, [...announcements, ...claims, ...(await readFile(vsaFile, 'utf8')).trim().split('\n')].join('\n') + '\n')
    const r = await neko(['verify', bundle, '--policy', policyFile])
    expect(r.stderr).not.toContain('unknown predicate type')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/VSA \(not counted\): PASSED by urn:neko-rebuilder:key:[0-9a-f]{64}/)
  })
})
