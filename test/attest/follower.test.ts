import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Envelope } from '../../src/protocol/dsse.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { collectAttestations, createAttestService } from '../../src/node/attest/index.js'
import { createDaemon } from '../../src/node/daemon/index.js'
import { createFollowers, DuplicateFollowerError } from '../../src/node/follow/index.js'
import { silentLogger } from '../../src/node/logger.js'
import { createRegistryClient, createRegistryWriter, parseReference, type RegistryWriter } from '../../src/node/registry/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { Store } from '../../src/node/store/types.js'
import { pushSyntheticImage, registryAvailable, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { LOOPBACK, waitFor } from '../node/helpers.js'
import { REPO, announcement, claim, imageResult, makeKeys, put, target, testPolicy, type Keys } from '../http/fixtures.js'

const C = '9'.repeat(40)
const available = registryAvailable('attest service as a follower')

/** A registry writer that counts what it writes. */
function counting (w: RegistryWriter): { writer: RegistryWriter, writes: () => number } {
  let writes = 0
  return {
    writer: {
      ...w,
      pushBlob: async (...a) => { writes++; return await w.pushBlob(...a) },
      putManifest: async (...a) => { writes++; return await w.putManifest(...a) }
    },
    writes: () => writes
  }
}

describe.skipIf(!available)('the attest service as a follower of the stored messages', () => {
  let keys: Keys
  let dir: string
  let reg: TestRegistry
  let digest: string
  const signer = generateIdentity()
  const log = silentLogger().forComponent('attest-test')

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-attest-follow-'))
    reg = await startRegistry()
    digest = (await pushSyntheticImage(reg.url, 'neko/follow', 'v9', { platforms: ['linux/amd64'], index: true })).images[0]!.manifestDigest
  })

  afterAll(async () => {
    await reg?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** One run of the node's attest service over the store on disk: its follower fed by the follower loop. */
  async function run (opts: { debounceMs?: number, policyDigest?: string }, during?: (store: Store, notify: () => void) => Promise<void>): Promise<{ writes: number, lag: number }> {
    const store = await createStore({}, { path: join(dir, 'store') })
    const { writer, writes } = counting(createRegistryWriter())
    const service = createAttestService({ store, policy: testPolicy(keys), identity: signer, registry: createRegistryClient(), writer, log }, {
      images: new Map([['app', `${reg.host}/neko/follow`]]),
      policyUri: 'urn:test:policy',
      policyDigest: opts.policyDigest ?? '0'.repeat(64),
      debounceMs: opts.debounceMs ?? 0
    })
    const followers = createFollowers({ store, followers: [service.follower] })
    try {
      await service.start()
      await followers.start()
      await during?.(store, followers.notify)
      await followers.idle()
      // A pass still waiting for quiet is not waited for: the node stops before it.
      if (opts.debounceMs === undefined) await service.idle()
      return { writes: writes(), lag: followers.lag().attest! }
    } finally {
      await followers.stop()
      await service.stop()
      await store.close()
    }
  }

  const referrers = async (of: string): Promise<{ vsas: number, claims: number }> => {
    const found = await collectAttestations({ writer: createRegistryWriter() }, parseReference(`${reg.host}/neko/follow`), of)
    const kind = (k: string): number => found.envelopes.filter(e => e.annotations['dev.neko-rebuilder.kind'] === k).length
    return { vsas: kind('vsa'), claims: kind('claim') }
  }

  const builderClaim = (i: number): Envelope =>
    signClaim(claim(target(C, 'app', 'linux/amd64', 'v9'), { result: { ...imageResult(digest), manifestDigest: digest } }), keys.builders[i]!)

  it('attests from its cursor after each restart, and pushes nothing twice for a settled release', async () => {
    const seed = await createStore({}, { path: join(dir, 'store') })
    await put(seed, signAnnouncement(announcement('v9', C, [['app', 'linux/amd64']]), keys.maintainer))
    for (const i of [0, 1]) await put(seed, builderClaim(i))
    await seed.close()

    // First run: the settled release is attested, and the cursor moves past what it read.
    const first = await run({})
    expect(first.writes).toBeGreaterThan(0)
    expect(first.lag).toBe(0)
    expect(await referrers(digest)).toEqual({ vsas: 1, claims: 2 })

    // Restarted with nothing new, even under another policy file (every release is looked at again): nothing is written.
    expect((await run({ policyDigest: '1'.repeat(64) })).writes).toBe(0)

    // A claim stored while the service was stopped is read from the cursor after the restart: attested once.
    const offline = await createStore({}, { path: join(dir, 'store') })
    await put(offline, builderClaim(2))
    await offline.close()
    const second = await run({ policyDigest: '1'.repeat(64) })
    expect(second.writes).toBeGreaterThan(0)
    expect(await referrers(digest)).toEqual({ vsas: 2, claims: 3 })
    expect((await run({ policyDigest: '1'.repeat(64) })).writes).toBe(0)
  })

  it('a release marked due but not attested before the node stopped is attested after the restart', async () => {
    const C10 = '7'.repeat(40)
    const d10 = (await pushSyntheticImage(reg.url, 'neko/follow', 'v10', { platforms: ['linux/amd64'], index: true })).images[0]!.manifestDigest
    // The pass waits for a quiet minute: the node stops first, with the release due and the cursor past its claims.
    const stopped = await run({ debounceMs: 60_000, policyDigest: '1'.repeat(64) }, async (store, notify) => {
      await put(store, signAnnouncement(announcement('v10', C10, [['app', 'linux/amd64']]), keys.maintainer))
      for (const b of keys.builders.slice(0, 2)) await put(store, signClaim(claim(target(C10, 'app', 'linux/amd64', 'v10'), { result: { ...imageResult(d10), manifestDigest: d10 } }), b))
      notify()
    })
    expect(stopped).toEqual({ writes: 0, lag: 0 })
    const check = await createStore({}, { path: join(dir, 'store') })
    expect(await check.getState('attest-due')).toEqual([`${REPO} v10`])
    await check.close()
    expect(await referrers(d10)).toEqual({ vsas: 0, claims: 0 })

    const resumed = await run({ policyDigest: '1'.repeat(64) })
    expect(resumed.writes).toBeGreaterThan(0)
    expect(await referrers(d10)).toEqual({ vsas: 1, claims: 2 })
    // The first release is untouched.
    expect(await referrers(digest)).toEqual({ vsas: 2, claims: 3 })
  })

  it('a node feeds it as one of its followers (join --attest), its lag among the node\'s', async () => {
    const C11 = '6'.repeat(40)
    const d11 = (await pushSyntheticImage(reg.url, 'neko/follow', 'v11', { platforms: ['linux/amd64'], index: true })).images[0]!.manifestDigest
    const store = await createStore({}, { path: join(dir, 'store') })
    const node = await createDaemon({ identity: generateIdentity(), store, policy: testPolicy(keys) }, { listen: [LOOPBACK], mdns: false })
    const service = createAttestService({ store, policy: testPolicy(keys), identity: signer, registry: createRegistryClient(), writer: createRegistryWriter(), log }, {
      images: new Map([['app', `${reg.host}/neko/follow`]]),
      policyUri: 'urn:test:policy',
      policyDigest: '1'.repeat(64),
      debounceMs: 0
    })
    try {
      await node.start()
      await service.start()
      await node.follow(service.follower)
      await expect(node.follow(service.follower)).rejects.toBeInstanceOf(DuplicateFollowerError)
      await node.announce(signAnnouncement(announcement('v11', C11, [['app', 'linux/amd64']]), keys.maintainer))
      for (const b of keys.builders.slice(0, 2)) await node.ingest.record(signClaim(claim(target(C11, 'app', 'linux/amd64', 'v11'), { result: { ...imageResult(d11), manifestDigest: d11 } }), b))
      await waitFor('the attestations of v11', async () => (await referrers(d11)).vsas === 1)
      expect(await referrers(d11)).toEqual({ vsas: 1, claims: 2 })
      await waitFor('the attest follower caught up', () => node.stats().followers.attest === 0)
    } finally {
      await service.stop()
      await node.stop()
    }
  })
})
