import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { attestRelease, collectAttestations, createAttestService, TagMovedError } from '../../src/node/attest/index.js'
import { evaluateRelease } from '../../src/node/consensus/evaluate.js'
import { readRelease, storeReleaseSource } from '../../src/node/consensus/release.js'
import { silentLogger } from '../../src/node/logger.js'
import { createRegistryClient, createRegistryWriter, DigestMismatchError, parseReference } from '../../src/node/registry/index.js'
import { createStore } from '../../src/node/store/level-store.js'
import type { Store } from '../../src/node/store/types.js'
import { pushSyntheticImage, registryAvailable, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { announcement, claim, imageResult, makeKeys, put, target, testPolicy, type Keys } from '../http/fixtures.js'
import { startTamperingProxy } from '../registry/proxy.js'

const C = '3'.repeat(40)
const available = registryAvailable('attest service')

describe.skipIf(!available)('attesting from a node and against a moving registry', () => {
  let keys: Keys
  let dir: string
  let store: Store
  let reg: TestRegistry
  let digest: string
  const signer: SigningIdentity = generateIdentity()
  const log = silentLogger().forComponent('attest-test')

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-attest-svc-'))
    reg = await startRegistry()
    digest = (await pushSyntheticImage(reg.url, 'neko/app', 'v7', { platforms: ['linux/amd64'], index: true })).images[0]!.manifestDigest
    store = await createStore({}, { path: join(dir, 'store') })
    await put(store, signAnnouncement(announcement('v7', C, [['app', 'linux/amd64']]), keys.maintainer))
    for (const b of keys.builders.slice(0, 2)) {
      await put(store, signClaim(claim(target(C, 'app', 'linux/amd64', 'v7'), { result: { ...imageResult(digest), manifestDigest: digest } }), b))
    }
  })

  afterAll(async () => {
    await store?.close()
    await reg?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  const components = (): { registry: ReturnType<typeof createRegistryClient>, writer: ReturnType<typeof createRegistryWriter>, log: typeof log } =>
    ({ registry: createRegistryClient(), writer: createRegistryWriter(), log })

  it('stops with TagMovedError, pushing nothing, when the tag moves before the push', async () => {
    const policy = testPolicy(keys)
    const { chosen, others, claims } = await readRelease(storeReleaseSource(store, policy, 'the test store'), policy, 'v7')
    const base = components()
    let calls = 0
    const registry = {
      ...base.registry,
      manifestDigest: async (ref: string) => {
        // The second look at the tag: the maintainer re-pushed it meanwhile.
        if (++calls === 2) await pushSyntheticImage(reg.url, 'neko/app', 'v7', { platforms: ['linux/amd64'], index: true, salt: 'moved' })
        return await base.registry.manifestDigest(ref)
      }
    }
    const attempt = attestRelease({ ...base, registry }, {
      evaluation: evaluateRelease({ policy, chosen, others, claims }),
      claims,
      images: new Map([['app', `${reg.host}/neko/app`]]),
      tag: 'v7',
      identity: signer,
      verifierId: 'urn:test',
      policyUri: 'urn:test:policy',
      policyDigest: '0'.repeat(64)
    })
    await expect(attempt).rejects.toBeInstanceOf(TagMovedError)
    await expect(attempt).rejects.toThrow(/moved from sha256:[0-9a-f]{64} to sha256:[0-9a-f]{64}/)
    const found = await collectAttestations({ writer: base.writer }, parseReference(`${reg.host}/neko/app`), digest)
    expect(found.envelopes).toEqual([])
  })

  it('a node attests decided releases once, and again only when they change', async () => {
    // Put the tag back where the claims say.
    await pushSyntheticImage(reg.url, 'neko/app', 'v7', { platforms: ['linux/amd64'], index: true })
    const service = createAttestService({ store, policy: testPolicy(keys), identity: signer, ...components() }, {
      images: new Map([['app', `${reg.host}/neko/app`]]),
      policyUri: 'urn:test:policy',
      policyDigest: '0'.repeat(64)
    })
    const first = await service.runOnce()
    expect(first.map(r => [r.variant, r.result, r.vsa, r.claims?.pushed])).toEqual([['app', 'PASSED', 'pushed', 2], ['index', 'PASSED', 'pushed', 0]])
    expect(await service.runOnce()).toEqual([])
    // A third builder's claim changes what the verdict rests on: attested again, the VSA replaced in cosign's tag.
    await put(store, signClaim(claim(target(C, 'app', 'linux/amd64', 'v7'), { result: { ...imageResult(digest), manifestDigest: digest } }), keys.builders[2]!))
    const third = await service.runOnce()
    expect(third.map(r => [r.variant, r.result, r.vsa, r.claims?.attached, r.claims?.pushed])).toEqual([['app', 'PASSED', 'pushed', 3, 1], ['index', 'PASSED', 'pushed', 0, 0]])
    const found = await collectAttestations({ writer: createRegistryWriter() }, parseReference(`${reg.host}/neko/app`), digest)
    // Both VSAs stay as referrers (nothing lost); three claims, each once.
    expect(found.envelopes.filter(e => e.annotations['dev.neko-rebuilder.kind'] === 'vsa')).toHaveLength(2)
    expect(found.envelopes.filter(e => e.annotations['dev.neko-rebuilder.kind'] === 'claim')).toHaveLength(3)
    const att = await createRegistryWriter().getManifest(parseReference(`${reg.host}/neko/app`), `${digest.replace(':', '-')}.att`)
    const layers = (att!.json.layers as Array<{ annotations: Record<string, string> }>)
    expect(layers.filter(l => l.annotations['dev.neko-rebuilder.kind'] === 'vsa')).toHaveLength(1)
    await service.stop()
  })

  it('attests no release without a trusted announcement, however many builders claimed it', async () => {
    const C8 = '8'.repeat(40)
    const d8 = (await pushSyntheticImage(reg.url, 'neko/app', 'v8', { platforms: ['linux/amd64'], index: true })).images[0]!.manifestDigest
    // A stranger announces v8 and every builder agrees on the image: still no release of the policy.
    await put(store, signAnnouncement(announcement('v8', C8, [['app', 'linux/amd64']]), keys.stranger))
    for (const b of keys.builders) await put(store, signClaim(claim(target(C8, 'app', 'linux/amd64', 'v8'), { result: { ...imageResult(d8), manifestDigest: d8 } }), b))
    const service = createAttestService({ store, policy: testPolicy(keys), identity: signer, ...components() }, {
      images: new Map([['app', `${reg.host}/neko/app`]]),
      policyUri: 'urn:test:policy',
      policyDigest: '0'.repeat(64)
    })
    const results = await service.runOnce()
    await service.stop()
    expect(results.some(r => r.key.includes(C8) || r.image?.endsWith(d8) === true)).toBe(false)
    expect((await collectAttestations({ writer: createRegistryWriter() }, parseReference(`${reg.host}/neko/app`), d8)).envelopes).toEqual([])
    // The one rule, read the way `attest` and `status` read it.
    await expect(readRelease(storeReleaseSource(store, testPolicy(keys), 'the store'), testPolicy(keys), 'v8')).rejects.toThrow(/no announcement of tag v8 in the store is signed by an announcer of the policy/)
  })

  it('refuses a registry that serves a manifest whose digest does not match', async () => {
    const proxy = await startTamperingProxy(reg.url, (req, res) => {
      if (req.method === 'GET' && req.path.includes('/manifests/v7')) return { ...res, body: Buffer.from(res.body.toString().replace('"schemaVersion":2', '"schemaVersion":2 ')) }
      return res
    })
    try {
      const writer = createRegistryWriter()
      await expect(writer.getManifest(parseReference(`${proxy.host}/neko/app:v7`), 'v7')).rejects.toBeInstanceOf(DigestMismatchError)
    } finally {
      await proxy.stop()
    }
  })
})
