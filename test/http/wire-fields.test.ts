import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import type { TagConsensus } from '../../src/node/consensus/types.js'
import { COMMIT_1, announcement, claim, imageResult, makeKeys, put, target, tempStore, testPolicy } from './fixtures.js'

// The API takes the tag and commit rules of the wire: whatever a message may carry can be asked for.
describe('HTTP API fields follow the wire rules', () => {
  const longTag = 'v1.0.0-' + 'x'.repeat(223)
  let server: FeedServer
  let base: string
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    const keys = makeKeys()
    const t = await tempStore()
    cleanup = t.cleanup
    await put(t.store, signAnnouncement(announcement(longTag, COMMIT_1, [['base', 'linux/amd64']]), keys.maintainer))
    await put(t.store, signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', longTag), { result: imageResult('long') }), keys.builders[0]!))
    server = createFeedServer({ store: t.store, policy: testPolicy(keys) }, { host: '127.0.0.1', port: 0 })
    base = (await server.start()).url
  })

  afterAll(async () => {
    await server?.stop()
    await cleanup?.()
  })

  it('serves the consensus and claims of a 230-character tag that a message carries', async () => {
    expect(longTag).toHaveLength(230)
    const consensus = await fetch(`${base}/api/v1/consensus/${longTag}`)
    expect(consensus.status).toBe(200)
    const c = await consensus.json() as TagConsensus
    expect(c.tag).toBe(longTag)
    expect(c.commit).toBe(COMMIT_1)
    const claims = await fetch(`${base}/api/v1/claims?tag=${longTag}`)
    expect(claims.status).toBe(200)
    expect((await claims.json() as { items: unknown[] }).items).toHaveLength(1)
    const releases = await fetch(`${base}/api/v1/releases?tag=${longTag}`)
    expect((await releases.json() as { items: Array<{ tag: string }> }).items.map(r => r.tag)).toEqual([longTag])
  })

  it('refuses a tag longer than a message may carry', async () => {
    const r = await fetch(`${base}/api/v1/claims?tag=${'x'.repeat(257)}`)
    expect(r.status).toBe(400)
    expect((await r.json() as { error: { field: string } }).error.field).toBe('tag')
    expect((await fetch(`${base}/api/v1/consensus/${'x'.repeat(257)}`)).status).toBe(404)
  })

  it('takes commits as the wire names them: 40 hex, not 64', async () => {
    const ok = await fetch(`${base}/api/v1/claims?commit=${COMMIT_1}`)
    expect(ok.status).toBe(200)
    expect((await ok.json() as { items: unknown[] }).items).toHaveLength(1)
    for (const path of [`/api/v1/claims?commit=${'a'.repeat(64)}`, `/api/v1/targets?commit=${'a'.repeat(64)}`]) {
      const r = await fetch(base + path)
      expect(r.status, path).toBe(400)
      const body = await r.json() as { error: { field: string, message: string } }
      expect(body.error.field).toBe('commit')
      expect(body.error.message).toContain('40 lowercase hex')
    }
  })
})
