import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import type { TrustPolicy } from '../../src/protocol/policy.js'
import { AmbiguousTagError } from '../../src/node/consensus/errors.js'
import { createPublishedLookup } from '../../src/node/consensus/published.js'
import { consensusForTag, createConsensusService } from '../../src/node/consensus/service.js'
import { createFeedServer } from '../../src/node/http/server.js'
import { createRegistryClient } from '../../src/node/registry/index.js'
import type { Store } from '../../src/node/store/types.js'
import { pushSyntheticImage, registryAvailable, startRegistry } from '../helpers/registry.js'
import { COMMIT_1, COMMIT_2, REPO, announcement, claim, imageResult, makeKeys, put, target, tempStore, testPolicy, type Keys } from './fixtures.js'

const OTHER_REPO = 'https://github.com/example/other'

describe('consensus service', () => {
  let keys: Keys
  let store: Store
  let cleanup: () => Promise<void>
  let policy: TrustPolicy

  beforeAll(async () => {
    keys = makeKeys()
    const t = await tempStore()
    store = t.store
    cleanup = t.cleanup
    policy = testPolicy(keys)
  })

  afterAll(async () => { await cleanup?.() })

  it('follows a moved tag, prefers trusted announcers and keeps the others visible', async () => {
    const service = createConsensusService({ store, policy })
    await put(store, signAnnouncement(announcement('m1', COMMIT_1, [['base', 'linux/amd64']]), keys.maintainer))
    const [b1, b2] = keys.builders
    for (const b of [b1!, b2!]) await put(store, signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'm1'), { result: imageResult('m1 a') }), b))
    const first = await service.forTag('m1')
    expect(first?.commit).toBe(COMMIT_1)
    expect(first?.status).toBe('reproducible')

    // A stranger "re-announces" the tag at another commit: ignored in favour of the trusted announcement.
    await put(store, signAnnouncement({ ...announcement('m1', COMMIT_2, [['base', 'linux/amd64']]), announcedAt: '2026-11-02T09:00:00Z' }, keys.stranger))
    const second = await service.forTag('m1')
    expect(second?.commit).toBe(COMMIT_1)
    expect(second?.announcement.trusted).toBe(true)
    expect(second?.otherAnnouncements).toEqual([expect.objectContaining({ commit: COMMIT_2, trusted: false, keyId: keys.stranger.keyId })])

    // The maintainer moves the tag: the newest trusted announcement wins, with nothing built yet.
    await put(store, signAnnouncement({ ...announcement('m1', COMMIT_2, [['base', 'linux/amd64']]), announcedAt: '2026-11-03T09:00:00Z' }, keys.maintainer))
    const third = await service.forTag('m1')
    expect(third?.commit).toBe(COMMIT_2)
    expect(third?.status).toBe('pending')
    expect(third?.otherAnnouncements).toHaveLength(2)
    // The uncached function agrees with the service.
    expect(await consensusForTag(store, policy, 'm1')).toEqual(third)
  })

  it('shows equivocating builders and does not count them', async () => {
    const service = createConsensusService({ store, policy })
    const commit = '1'.repeat(40)
    await put(store, signAnnouncement(announcement('eq', commit, [['base', 'linux/amd64']]), keys.maintainer))
    const [b1, b2, b3] = keys.builders
    await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'eq'), { result: imageResult('eq a') }), b1!))
    await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'eq'), { result: imageResult('eq a') }), b2!))
    await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'eq'), { result: imageResult('eq a') }), b3!))
    await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'eq'), { result: imageResult('eq b') }), b3!))
    // A claim for a target the release does not name stays out of it.
    await put(store, signClaim(claim(target(commit, 'extra', 'linux/amd64', 'eq'), { result: imageResult('eq x') }), b1!))
    const c = await service.forTag('eq')
    expect(c?.targets).toHaveLength(1)
    const t = c!.targets[0]!
    expect(t.status).toBe('reproducible')
    expect(t.agreeing.map(a => a.keyId).sort()).toEqual([b1!.keyId, b2!.keyId].sort())
    expect(t.equivocating).toEqual([{ keyId: b3!.keyId, operator: 'operator-3', digests: [imageResult('eq a').manifestDigest, imageResult('eq b').manifestDigest].sort() }])
  })

  it('refuses to guess between repositories announcing the same tag', async () => {
    const service = createConsensusService({ store, policy })
    await put(store, signAnnouncement(announcement('same', '2'.repeat(40), [['base', 'linux/amd64']]), keys.maintainer))
    await put(store, signAnnouncement({ ...announcement('same', '3'.repeat(40), [['base', 'linux/amd64']]), repository: OTHER_REPO }, keys.maintainer))
    await expect(service.forTag('same')).rejects.toBeInstanceOf(AmbiguousTagError)
    await expect(consensusForTag(store, policy, 'same')).rejects.toThrow(/repository: tag same is announced for 2 repositories/)
    expect((await service.forTag('same', { repository: OTHER_REPO }))?.commit).toBe('3'.repeat(40))
    expect((await service.forTag('same', { repository: REPO }))?.commit).toBe('2'.repeat(40))
    expect(await service.forTag('same', { repository: 'https://example.org/none' })).toBeUndefined()

    const server = createFeedServer({ store, policy }, { host: '127.0.0.1', port: 0 })
    const { url } = await server.start()
    try {
      const r = await fetch(`${url}/api/v1/consensus/same`)
      expect(r.status).toBe(400)
      expect((await r.json() as { error: { field: string } }).error.field).toBe('repository')
      const ok = await fetch(`${url}/api/v1/consensus/same?repository=${encodeURIComponent(OTHER_REPO)}`)
      expect(ok.status).toBe(200)
    } finally {
      await server.stop()
    }
  })

  const registry = registryAvailable('feed published digests')
  it.skipIf(!registry)('compares agreed digests with a real registry through the feed server', async () => {
    const reg = await startRegistry()
    const server = { stop: async () => {} }
    try {
      const pushed = await pushSyntheticImage(reg.url, 'neko/base', 'pub1', { platforms: ['linux/amd64', 'linux/arm64'] })
      const amd64 = pushed.images.find(i => i.platform === 'linux/amd64')!.manifestDigest
      const commit = '4'.repeat(40)
      await put(store, signAnnouncement(announcement('pub1', commit, [['base', 'linux/amd64'], ['base', 'linux/arm64'], ['app', 'linux/amd64']]), keys.maintainer))
      const [b1, b2] = keys.builders
      for (const b of [b1!, b2!]) {
        await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'pub1'), { result: { ...imageResult('pub1'), manifestDigest: amd64 } }), b))
        await put(store, signClaim(claim(target(commit, 'base', 'linux/arm64', 'pub1'), { result: imageResult('pub1 arm64 rebuilt') }), b))
        await put(store, signClaim(claim(target(commit, 'app', 'linux/amd64', 'pub1'), { result: imageResult('pub1 app') }), b))
      }
      const lookup = createPublishedLookup({ registry: createRegistryClient() }, { images: new Map([['base', `${reg.host}/neko/base`], ['app', `${reg.host}/neko/app`]]) })
      const feed = createFeedServer({ store, policy, published: lookup }, { host: '127.0.0.1', port: 0 })
      server.stop = async () => { await feed.stop() }
      const { url } = await feed.start()
      const c = await (await fetch(`${url}/api/v1/consensus/pub1`)).json() as { targets: Array<{ variant: string, platform: string, published: unknown }> }
      const byName = new Map(c.targets.map(t => [`${t.variant} ${t.platform}`, t.published]))
      expect(byName.get('base linux/amd64')).toEqual({ digest: amd64, match: 'yes' })
      expect(byName.get('base linux/arm64')).toEqual({ digest: pushed.images.find(i => i.platform === 'linux/arm64')!.manifestDigest, match: 'no' })
      // Nothing pushed for app: unknown, not a mismatch.
      expect(byName.get('app linux/amd64')).toEqual({ match: 'unknown' })
    } finally {
      await server.stop()
      await reg.stop()
    }
  })

  it('ignores a new identity nobody trusts when counting', async () => {
    const service = createConsensusService({ store, policy })
    const commit = '5'.repeat(40)
    await put(store, signAnnouncement(announcement('sy', commit, [['base', 'linux/amd64']]), keys.maintainer))
    // A Sybil flood: many fresh keys agreeing on one digest change nothing.
    for (let i = 0; i < 5; i++) await put(store, signClaim(claim(target(commit, 'base', 'linux/amd64', 'sy'), { result: imageResult('sybil') }), generateIdentity()))
    const c = await service.forTag('sy')
    expect(c?.targets[0]?.status).toBe('pending')
    expect(c?.targets[0]?.untrusted).toHaveLength(5)
  })
})
