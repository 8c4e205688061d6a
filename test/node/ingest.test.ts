import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createIngest } from '../../src/node/ingest/index.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore, type Store } from '../../src/node/store/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import type { Announcement, Claim } from '../../src/protocol/types.js'
import { policyFor } from './helpers.js'

const announcement: Announcement = {
  repository: 'https://example.invalid/p.git',
  tag: 'v1',
  commit: 'b'.repeat(40),
  recipe: { name: 'default', digest: `sha256:${'1'.repeat(64)}` },
  targets: [{ variant: 'default', platform: 'linux/amd64' }],
  announcedAt: '2026-01-01T00:00:00Z'
}

function claim (variant = 'default', digest = 'c'): Claim {
  return {
    target: { repository: announcement.repository, commit: announcement.commit, variant, platform: 'linux/amd64', tag: 'v1' },
    sourceDateEpoch: 1700000000,
    recipe: announcement.recipe,
    environment: { engine: { name: 'docker', version: '26' }, buildx: '0.13', buildkit: 'v0.13', kernel: '6.1', arch: 'amd64', emulated: false, tool: { name: 'neko-rebuilder', version: '0.1.0' } },
    startedOn: '2026-01-01T00:00:00Z',
    finishedOn: '2026-01-01T00:01:00Z',
    result: { indexDigest: `sha256:${digest.repeat(64)}`, manifestDigest: `sha256:${digest.repeat(64)}`, configDigest: `sha256:${'d'.repeat(64)}`, diffIds: [] }
  }
}

const bytes = (v: unknown): Uint8Array => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))

describe('ingest', () => {
  let dir: string
  let store: Store
  const builder = generateIdentity()
  const announcer = generateIdentity()
  const policy = policyFor([builder], [announcer])

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-validator-'))
    store = await createStore({}, { path: join(dir, 'store') })
  })
  afterEach(async () => {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('accepts trusted messages once and rejects what is malformed, forged, misplaced or from an unknown announcer', async () => {
    const ingest = createIngest({ store, policy })
    const v = { check: async (topic: string | undefined, data: Uint8Array) => await ingest.validate(topic as string, data) }
    const stored: string[] = []
    ingest.addEventListener('stored', ({ detail }) => { stored.push(`${detail.kind} ${detail.id} ${detail.cursor}`) })
    const ann = bytes(signAnnouncement(announcement, announcer))
    const ok = await v.check(TOPICS.announcements, ann)
    expect(ok.verdict).toBe('accept')
    // The judgement carries the verified message: delivery stores it without a second verification.
    expect(ok.message?.kind).toBe('announcement')
    expect(await ingest.deliver(ok, ann)).toBe('stored')
    expect(stored).toEqual([`announcement ${ok.message?.id} 1`])
    expect((await store.getMessage(ok.message?.id ?? ''))?.envelopeJson).toBe(Buffer.from(ann).toString())
    expect((await v.check(TOPICS.announcements, ann)).verdict).toBe('ignore')
    expect(await ingest.deliver(ok, ann)).toBe('duplicate')
    expect(stored).toHaveLength(1)

    expect((await v.check(TOPICS.claims, ann)).verdict).toBe('reject')
    // Another policy's announcer: not ours to store, but not the relaying peer's fault either.
    const foreign = await v.check(TOPICS.announcements, bytes(signAnnouncement({ ...announcement, tag: 'v2' }, generateIdentity())))
    expect([foreign.verdict, foreign.refused, foreign.reason]).toEqual(['ignore', true, expect.stringMatching(/not an announcer of the policy/)])
    expect(await ingest.acceptItems([bytes(signAnnouncement({ ...announcement, tag: 'v3' }, generateIdentity()))])).toEqual([{ outcome: 'duplicate', trusted: false }])
    expect((await v.check(TOPICS.claims, bytes('{"payload":'))).verdict).toBe('reject')
    expect((await v.check(TOPICS.claims, new Uint8Array(70_000))).verdict).toBe('reject')
    const env = signClaim(claim(), builder)
    const forged = { ...env, payload: Buffer.from(Buffer.from(env.payload, 'base64').toString().replace('"v1"', '"v9"')).toString('base64') }
    expect((await v.check(TOPICS.claims, bytes(forged))).verdict).toBe('reject')
    expect((await v.check(TOPICS.claims, bytes(env))).verdict).toBe('accept')
  })

  it('rate-limits an untrusted key and caps untrusted claims per target', async () => {
    const ingest = createIngest({ store, policy }, { untrustedPerMinute: 4, untrustedPerTarget: 2 })
    const v = { check: async (topic: string, data: Uint8Array) => await ingest.validate(topic, data) }
    const stranger = generateIdentity()
    // Burst of one key: the first pass (burst = a quarter of the minute's rate, at least 1), then ignored.
    const first = await v.check(TOPICS.claims, bytes(signClaim(claim('a'), stranger)))
    expect(first.verdict).toBe('accept')
    expect((await v.check(TOPICS.claims, bytes(signClaim(claim('b'), stranger)))).verdict).toBe('ignore')

    // Per target: two untrusted claims stored, a third stranger is ignored; a trusted builder still gets in.
    for (const digest of ['1', '2']) {
      const s = generateIdentity()
      const data = bytes(signClaim(claim('x', digest), s))
      const r = await v.check(TOPICS.claims, data)
      expect(r.verdict).toBe('accept')
      expect(await ingest.deliver(r, data)).toBe('stored')
    }
    expect((await v.check(TOPICS.claims, bytes(signClaim(claim('x', '3'), generateIdentity())))).verdict).toBe('ignore')
    expect((await v.check(TOPICS.claims, bytes(signClaim(claim('x', '4'), builder)))).verdict).toBe('accept')
  })

  it('checks a page as a batch with the verdicts of check, storing each accepted item before judging the next', async () => {
    const ingest = createIngest({ store, policy }, { untrustedPerTarget: 2 })
    const good = bytes(signClaim(claim('p', '1'), builder))
    const env = signClaim(claim('p', '2'), builder)
    const forged = bytes({ ...env, payload: signClaim(claim('p', '3'), builder).payload })
    const strangers = ['4', '5', '6'].map(d => bytes(signClaim(claim('q', d), generateIdentity())))
    const page = [good, forged, new Uint8Array(70_000), bytes('not json'), Uint8Array.from(good), ...strangers, bytes(signAnnouncement(announcement, announcer))]
    const seen: string[] = []
    ingest.addEventListener('stored', ({ detail }) => { seen.push(detail.id) })
    const outcomes = await ingest.acceptPage(page)
    // The copy of `good` is judged after `good` was stored; the third stranger finds the target at its cap.
    expect(outcomes).toEqual(['stored', 'rejected', 'rejected', 'rejected', 'duplicate', 'stored', 'stored', 'duplicate', 'stored'])
    expect(seen).toHaveLength(4)
    // Gossip judges the same items alike: stored ones are duplicates, forged and malformed ones rejected.
    const one = await Promise.all(page.map(async d => (await ingest.validate(TOPICS.claims, d)).verdict))
    expect(one.slice(0, 4)).toEqual(['ignore', 'reject', 'reject', 'reject'])
  })
})
