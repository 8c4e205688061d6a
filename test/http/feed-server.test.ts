import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseBundle } from '../../src/protocol/bundle.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { policyKeys, type TrustPolicy } from '../../src/protocol/policy.js'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import { createMetrics, type Metrics } from '../../src/node/metrics.js'
import type { Store } from '../../src/node/store/types.js'
import type { TagConsensus } from '../../src/node/consensus/types.js'
import { COMMIT_1, COMMIT_3, REPO, announcement, claim, imageResult, makeKeys, put, seedReleases, target, tempStore, testPolicy, type Keys } from './fixtures.js'

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** Raw HTTP, so methods, headers and odd URLs go out exactly as written. */
async function http (base: string, path: string, opts: { method?: string, headers?: Record<string, string> } = {}): Promise<Reply> {
  const url = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', headers: opts.headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c as Buffer))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function json<T = any> (base: string, path: string): Promise<T> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await http(base, path)
  expect(r.status, `${path}: ${r.body}`).toBe(200)
  return JSON.parse(r.body) as T
}

describe('feed server', () => {
  let keys: Keys
  let store: Store
  let cleanup: () => Promise<void>
  let policy: TrustPolicy
  let metrics: Metrics
  let server: FeedServer
  let base: string
  let ids: string[]

  beforeAll(async () => {
    keys = makeKeys()
    const t = await tempStore()
    store = t.store
    cleanup = t.cleanup
    ids = (await seedReleases(store, keys)).ids
    policy = testPolicy(keys)
    metrics = createMetrics({ processMetrics: false })
    metrics.setPeers(3)
    metrics.claimStored('announcement')
    metrics.claimStored('claim')
    metrics.buildFinished('success', 42)
    metrics.buildFinished('timeout', 3600)
    server = createFeedServer({ store, policy, metrics, builders: () => [{ keyId: keys.builders[0]!.keyId, platforms: ['linux/amd64'] }] }, { host: '127.0.0.1', port: 0 })
    base = (await server.start()).url
  })

  afterAll(async () => {
    await server?.stop()
    await cleanup?.()
  })

  it('listens on loopback and answers /healthz', async () => {
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const h = await json(base, '/healthz')
    expect(h).toMatchObject({ status: 'ok', messages: ids.length, announcements: 4 })
  })

  it('pages through every claim with the next cursor and Link header', async () => {
    const seen: string[] = []
    let path = '/api/v1/claims?limit=4'
    let pages = 0
    for (;;) {
      const r = await http(base, path)
      expect(r.status).toBe(200)
      const body = JSON.parse(r.body) as { items: Array<{ id: string, cursor: number, claim: unknown }>, next: string, more: boolean }
      pages++
      for (const item of body.items) {
        expect(item.claim).toBeDefined()
        seen.push(item.id)
      }
      if (!body.more) {
        expect(r.headers.link).toBeUndefined()
        break
      }
      const link = String(r.headers.link)
      const m = /^<([^>]+)>; rel="next"$/.exec(link)
      expect(m, link).not.toBeNull()
      expect(link).toContain(`cursor=${body.next}`)
      path = m![1]!
      expect(pages).toBeLessThan(20)
    }
    const stored = await store.messagesSince(0, 1000, { kind: 'claim' })
    expect(seen).toEqual(stored.items.map(m => m.id))
    expect(new Set(seen).size).toBe(seen.length)
    expect(pages).toBe(Math.ceil(seen.length / 4) + (seen.length % 4 === 0 ? 1 : 0))
  })

  it('filters claims by tag, commit, builder and repository', async () => {
    const byTag = await json(base, '/api/v1/claims?tag=v2')
    expect(byTag.items).toHaveLength(3)
    expect(byTag.items.every((i: any) => i.claim.target.tag === 'v2')).toBe(true) // eslint-disable-line @typescript-eslint/no-explicit-any
    const byCommit = await json(base, `/api/v1/claims?commit=${COMMIT_3}`)
    expect(byCommit.items).toHaveLength(1)
    const b3 = keys.builders[2]!.keyId
    const byBuilder = await json(base, `/api/v1/claims?builder=${b3}`)
    // builder 3: v1 amd64, v1 arm64, v1 app (failure), v2
    expect(byBuilder.items).toHaveLength(4)
    expect(byBuilder.items.every((i: any) => i.keyId === b3)).toBe(true) // eslint-disable-line @typescript-eslint/no-explicit-any
    const both = await json(base, `/api/v1/claims?repository=${encodeURIComponent(REPO)}&commit=${COMMIT_1}&builder=${b3}`)
    expect(both.items).toHaveLength(3)
    const none = await json(base, `/api/v1/claims?repository=${encodeURIComponent('https://example.org/other')}`)
    expect(none.items).toEqual([])
    expect(none.more).toBe(false)
  })

  it('answers bad parameters with 400 naming the parameter', async () => {
    const cases: Array<[string, string, string]> = [
      ['/api/v1/claims?cursor=abc', 'cursor', 'ERR_VALIDATION'],
      ['/api/v1/claims?cursor=-1', 'cursor', 'ERR_VALIDATION'],
      ['/api/v1/claims?limit=1001', 'limit', 'ERR_LIMIT'],
      ['/api/v1/claims?commit=xyz', 'commit', 'ERR_VALIDATION'],
      ['/api/v1/claims?tag=a%20b', 'tag', 'ERR_VALIDATION'],
      ['/api/v1/claims?colour=red', 'colour', 'ERR_VALIDATION'],
      ['/api/v1/claims?tag=v1&tag=v2', 'tag', 'ERR_VALIDATION'],
      ['/api/v1/claims?' + Array.from({ length: 17 }, (_, i) => `p${i}=1`).join('&'), 'query parameters', 'ERR_LIMIT']
    ]
    for (const [path, field, code] of cases) {
      const r = await http(base, path)
      expect(r.status, path).toBe(400)
      expect(r.headers['content-type']).toMatch(/^application\/json/)
      const body = JSON.parse(r.body) as { error: { code: string, message: string, field: string } }
      expect(body.error.field, path).toBe(field)
      expect(body.error.code, path).toBe(code)
      expect(body.error.message, path).toContain(field)
    }
  })

  it('answers unknown tags and routes with 404, long URLs with 414', async () => {
    const tag = await http(base, '/api/v1/consensus/v9.9.9')
    expect(tag.status).toBe(404)
    expect(JSON.parse(tag.body).error.message).toContain('v9.9.9')
    const route = await http(base, '/api/v2/nothing')
    expect(route.status).toBe(404)
    expect(JSON.parse(route.body).error.code).toBe('ERR_NOT_FOUND')
    const long = await http(base, '/api/v1/claims?tag=' + 'x'.repeat(3000))
    expect(long.status).toBe(414)
    const big = await http(base, '/healthz', { headers: { 'X-Padding': 'x'.repeat(20_000) } })
    expect(big.status).toBe(431)
    // The server is still fine afterwards.
    expect((await http(base, '/healthz')).status).toBe(200)
  })

  it('is read-only: 405 for writes, CORS preflight for reads', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const r = await http(base, '/api/v1/claims', { method })
      expect(r.status, method).toBe(405)
      expect(r.headers.allow).toBe('GET, HEAD, OPTIONS')
      expect(r.headers['access-control-allow-origin']).toBe('*')
    }
    const pre = await http(base, '/api/v1/claims', { method: 'OPTIONS', headers: { Origin: 'https://example.org', 'Access-Control-Request-Method': 'GET' } })
    expect(pre.status).toBe(204)
    expect(pre.headers['access-control-allow-origin']).toBe('*')
    expect(pre.headers['access-control-allow-methods']).toBe('GET, HEAD, OPTIONS')
    const get = await http(base, '/api/v1/targets')
    expect(get.headers['access-control-allow-origin']).toBe('*')
    const head = await http(base, '/api/v1/targets', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
    expect(head.headers.etag).toBe(get.headers.etag)
  })

  it('serves the consensus of a tag with dissent located at its first differing layer', async () => {
    const c = await json<TagConsensus>(base, '/api/v1/consensus/v1')
    expect(c.commit).toBe(COMMIT_1)
    expect(c.announcement.trusted).toBe(true)
    const byName = new Map(c.targets.map(t => [`${t.variant} ${t.platform}`, t]))
    const amd = byName.get('base linux/amd64')!
    expect(amd.status).toBe('reproducible')
    expect(amd.agreeing).toHaveLength(3)
    expect(amd.consensusDigest).toBe(imageResult('v1 base amd64').manifestDigest)
    expect(amd.untrusted).toHaveLength(1)
    expect(amd.untrusted[0]!.keyId).toBe(keys.stranger.keyId)
    const arm = byName.get('base linux/arm64')!
    expect(arm.status).toBe('disputed')
    expect(arm.dissenting).toHaveLength(1)
    expect(arm.dissenting[0]!.divergence).toMatchObject({ kind: 'layer', index: 1 })
    expect(arm.dissenting[0]!.divergence!.step).toContain('RUN')
    const app = byName.get('app linux/amd64')!
    expect(app.status).toBe('failed')
    expect(app.failed.map(f => f.failure?.class).sort()).toEqual(['build-failed', 'build-failed', 'timeout'])
    expect(c.status).toBe('disputed')
    expect((await json<TagConsensus>(base, '/api/v1/consensus/v2')).status).toBe('unreproducible')
    expect((await json<TagConsensus>(base, '/api/v1/consensus/v3')).status).toBe('pending')
    expect((await json<TagConsensus>(base, `/api/v1/consensus/v4?repository=${encodeURIComponent(REPO)}`)).status).toBe('reproducible')
  })

  it('sends strong ETags, answers If-None-Match with 304, and changes the tag when a claim arrives', async () => {
    const first = await http(base, '/api/v1/consensus/v3')
    const etag = first.headers.etag as string
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{43}"$/)
    const again = await http(base, '/api/v1/consensus/v3', { headers: { 'If-None-Match': etag } })
    expect(again.status).toBe(304)
    expect(again.body).toBe('')
    const weak = await http(base, '/api/v1/consensus/v3', { headers: { 'If-None-Match': `"other", W/${etag}` } })
    expect(weak.status).toBe(304)

    // A second builder agrees: v3 becomes reproducible and the cached answer must not survive.
    await put(store, signClaim(claim(target(COMMIT_3, 'base', 'linux/amd64', 'v3'), { result: imageResult('v3') }), keys.builders[1]!))
    const after = await http(base, '/api/v1/consensus/v3', { headers: { 'If-None-Match': etag } })
    expect(after.status).toBe(200)
    expect(after.headers.etag).not.toBe(etag)
    expect(JSON.parse(after.body).status).toBe('reproducible')
  })

  it('lists releases, targets and builders', async () => {
    const releases = await json(base, '/api/v1/releases')
    expect(releases.items.map((r: { tag: string }) => r.tag).sort()).toEqual(['v1', 'v2', 'v3', 'v4'])
    const targets = await json(base, '/api/v1/targets')
    expect(targets.items).toHaveLength(7)
    expect(targets.items[0]).toHaveProperty('key')
    const scoped = await json(base, `/api/v1/targets?commit=${COMMIT_1}`)
    expect(scoped.items).toHaveLength(3)
    const builders = await json(base, '/api/v1/builders')
    expect(builders.items).toEqual([{ keyId: keys.builders[0]!.keyId, platforms: ['linux/amd64'] }])
  })

  it('streams every stored envelope as a bundle that verifies offline', async () => {
    const r = await http(base, '/claims.intoto.jsonl')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^application\/jsonl/)
    const bundle = parseBundle(r.body, { keys: policyKeys(policy), allowEmbeddedKeys: true })
    expect(bundle.errors).toEqual([])
    const all = await store.messagesSince(0, 1000)
    expect(bundle.entries.map(e => e.message.id)).toEqual(all.items.map(m => m.id))
    // Only the stranger's claim needs its embedded key: everything else verifies against the policy.
    const strict = parseBundle(r.body, { keys: policyKeys(policy) })
    expect(strict.errors).toHaveLength(1)

    const v1 = parseBundle((await http(base, '/claims.intoto.jsonl?tag=v1')).body, { keys: policyKeys(policy), allowEmbeddedKeys: true })
    expect(v1.errors).toEqual([])
    expect(v1.entries).toHaveLength(1 + 4 + 2 + 3)
    expect(v1.entries[0]!.message.kind).toBe('announcement')
    expect(v1.entries.every(e => e.message.kind === 'announcement' || e.message.claim.target.commit === COMMIT_1)).toBe(true)
    const head = await http(base, '/claims.intoto.jsonl', { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.body).toBe('')
  })

  it('publishes a JSON Feed 1.1 of claims and verdicts', async () => {
    const r = await http(base, '/feed.json')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^application\/feed\+json/)
    const feed = JSON.parse(r.body)
    expect(feed.version).toBe('https://jsonfeed.org/version/1.1')
    expect(typeof feed.title).toBe('string')
    expect(feed.feed_url).toBe(`${base}/feed.json`)
    expect(feed.items.length).toBeGreaterThan(ids.length)
    const itemIds = new Set<string>()
    for (const item of feed.items) {
      expect(typeof item.id).toBe('string')
      expect(itemIds.has(item.id)).toBe(false)
      itemIds.add(item.id)
      expect(item.title.length).toBeGreaterThan(0)
      expect(item.content_text.length).toBeGreaterThan(0)
      expect(Number.isNaN(Date.parse(item.date_published))).toBe(false)
    }
    const dates = feed.items.map((i: { date_published: string }) => i.date_published)
    expect([...dates].sort().reverse()).toEqual(dates)
    const verdicts = feed.items.filter((i: { id: string }) => i.id.startsWith('verdict:'))
    expect(verdicts.some((i: { title: string }) => i.title === 'v2 base linux/amd64: unreproducible')).toBe(true)
    expect(verdicts.some((i: { title: string }) => i.title === 'v1 base linux/arm64: disputed')).toBe(true)
  })

  it('exports Prometheus metrics', async () => {
    const r = await http(base, '/metrics')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/^text\/plain/)
    expect(r.body).toContain('neko_peers 3')
    expect(r.body).toMatch(/neko_messages_stored_total\{kind="claim"\} 1/)
    expect(r.body).toMatch(/neko_messages_stored_total\{kind="announcement"\} 1/)
    expect(r.body).toMatch(/neko_builds_total\{outcome="success"\} 1/)
    expect(r.body).toMatch(/neko_builds_total\{outcome="timeout"\} 1/)
    expect(r.body).toMatch(/neko_build_duration_seconds_bucket\{le="60",outcome="success"\} 1/)
    expect(r.body).toMatch(/neko_build_duration_seconds_bucket\{le="1800",outcome="timeout"\} 0/)
  })

  it('serves the dashboard page and its assets', async () => {
    const page = await http(base, '/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.body).toContain('<script type="module" src="/dashboard.js">')
    const js = await http(base, '/dashboard.js')
    expect(js.headers['content-type']).toMatch(/^text\/javascript/)
    expect(js.body).toContain('/api/v1/releases')
    const css = await http(base, '/dashboard.css')
    expect(css.headers['content-type']).toMatch(/^text\/css/)
  })
  it('answers no verdict for a tag only an untrusted key announced: 404, and no such release listed', async () => {
    await put(store, signAnnouncement(announcement('u1', COMMIT_3, [['base', 'linux/amd64']]), keys.stranger))
    const r = await http(base, '/api/v1/consensus/u1')
    expect(r.status).toBe(404)
    expect(JSON.parse(r.body).error).toEqual({ code: 'ERR_NO_TRUSTED_ANNOUNCEMENT', message: expect.stringContaining(`no announcement of tag u1 in the store of this node is signed by an announcer of the policy (the only one, for commit ${COMMIT_3}, is signed by ${keys.stranger.keyId})`) })
    const releases = await json(base, '/api/v1/releases?tag=u1')
    expect(releases.items).toEqual([])
  })
})
