import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { ValidationError } from '../../src/protocol/errors.js'
import { BACKFILL_PROTOCOL, BackfillError, FRAME } from '../../src/node/p2p/index.js'
import type { BackfillSource } from '../../src/node/p2p/index.js'
import { startNode, startRawNode } from './helpers.js'
import type { TestNode } from './helpers.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** A store-like log: item k has cursor k (from 1); a page holds cursors > cursor, oldest first. */
function logSource (items: Uint8Array[]): BackfillSource {
  return async ({ cursor, limit }) => {
    const page = items.slice(cursor, cursor + limit)
    return { items: page, next: cursor + page.length }
  }
}

function frame (type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.byteLength + 1)
  out[0] = type
  out.set(body, 1)
  return out
}

async function expectBackfillError (p: Promise<unknown>, reason: string, remote: boolean): Promise<BackfillError> {
  const err = await p.then(() => { throw new Error('expected a BackfillError') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(BackfillError)
  expect((err as BackfillError).name).toBe('BackfillError')
  expect((err as BackfillError).reason).toBe(reason)
  expect((err as BackfillError).remote).toBe(remote)
  return err as BackfillError
}

/** Sends raw request bytes and returns every response frame. */
async function rawExchange (client: Libp2p, server: TestNode, request: Uint8Array): Promise<Uint8Array[]> {
  const stream = await client.dialProtocol(multiaddr(server.node.multiaddrs()[0]!), BACKFILL_PROTOCOL)
  const lp = lpStream(stream)
  await lp.write(request)
  const frames: Uint8Array[] = []
  for (;;) {
    try {
      frames.push((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
    } catch {
      return frames
    }
  }
}

const log = Array.from({ length: 20 }, (_, i) => enc(`envelope-${i + 1}`))

describe('back-fill over loopback TCP', () => {
  let a: TestNode
  let b: TestNode

  beforeAll(async () => {
    a = await startNode({ backfillSource: logSource(log), init: { backfill: { maxItems: 5 } } })
    b = await startNode()
    await b.node.dial(a.node.multiaddrs()[0]!)
  })

  afterAll(async () => {
    await Promise.all([a.node.stop(), b.node.stop()])
  })

  it('returns the items after a cursor and the next cursor', async () => {
    const page = await b.node.backfill(a.node.peerId, 3, 4)
    expect(page.items.map(dec)).toEqual(['envelope-4', 'envelope-5', 'envelope-6', 'envelope-7'])
    expect(page.next).toBe(7)
    const rest = await b.node.backfill(a.node.peerId, 18, 4)
    expect(rest.items.map(dec)).toEqual(['envelope-19', 'envelope-20'])
    expect(rest.next).toBe(20)
    const none = await b.node.backfill(a.node.peerId, 20, 4)
    expect(none).toEqual({ items: [], next: 20 })
  })

  it('pages by the server\'s maxItems when asked for more, so a client can walk the whole log', async () => {
    const first = await b.node.backfill(a.node.peerId, 0, 50)
    expect(first.items).toHaveLength(5)
    expect(first.next).toBe(5)
    const seen: string[] = []
    let cursor = 0
    for (;;) {
      const page = await b.node.backfill(a.node.peerId, cursor, 50)
      if (page.items.length === 0) break
      seen.push(...page.items.map(dec))
      cursor = page.next
    }
    expect(seen).toEqual(log.map(dec))
  })

  it('passes before and newest to the source and brings back from and head; refuses an END whose range does not hold', async () => {
    // A source over the same log that honours the range: cursor k is log item k (from 1).
    const ranged: BackfillSource = async ({ cursor, limit, before, newest }) => {
      const to = Math.min(log.length, (before ?? Number.MAX_SAFE_INTEGER) - 1)
      const start = newest === true ? Math.max(cursor, to - limit) : cursor
      const end = Math.max(start, Math.min(to, start + limit))
      return { items: log.slice(start, end), next: end, from: start, head: log.length }
    }
    const c = await startNode({ backfillSource: ranged })
    const liar = await startRawNode()
    try {
      const newest = await b.node.backfill(c.node.multiaddrs()[0]!, 0, 4, { newest: true })
      expect(newest.items.map(dec)).toEqual(['envelope-17', 'envelope-18', 'envelope-19', 'envelope-20'])
      expect(newest).toMatchObject({ from: 16, next: 20, head: 20 })
      const below = await b.node.backfill(c.node.multiaddrs()[0]!, 0, 4, { newest: true, before: 17 })
      expect(below.items.map(dec)).toEqual(['envelope-13', 'envelope-14', 'envelope-15', 'envelope-16'])
      expect(below).toMatchObject({ from: 12, next: 16 })
      const capped = await b.node.backfill(c.node.multiaddrs()[0]!, 10, 4, { before: 13 })
      expect(capped.items.map(dec)).toEqual(['envelope-11', 'envelope-12'])
      await expect(b.node.backfill(c.node.multiaddrs()[0]!, 5, 4, { before: 5 })).rejects.toThrow(/before/)
      // A server whose END says it starts above where it ends is refused whole.
      await liar.handle(BACKFILL_PROTOCOL, async (stream) => {
        const lp = lpStream(stream)
        await lp.read()
        await lp.write(frame(FRAME.ITEM, enc('envelope-x')))
        await lp.write(frame(FRAME.END, enc(JSON.stringify({ next: 2, from: 5, head: 9 }))))
        await stream.close()
      })
      await expectBackfillError(b.node.backfill(liar.getMultiaddrs()[0]!.toString(), 0, 4, { newest: true }), 'bad-response', false)
    } finally {
      await Promise.all([c.node.stop(), liar.stop()])
    }
  })

  it('dials a peer given by multiaddr', async () => {
    const c = await startNode()
    try {
      const page = await c.node.backfill(a.node.multiaddrs()[0]!, 0, 2)
      expect(page.items.map(dec)).toEqual(['envelope-1', 'envelope-2'])
    } finally {
      await c.node.stop()
    }
  })

  it('rejects bad arguments locally with a ValidationError naming the field', async () => {
    await expect(b.node.backfill(a.node.peerId, -1, 1)).rejects.toThrow(ValidationError)
    await expect(b.node.backfill(a.node.peerId, 0, 0)).rejects.toThrow(/limit/)
    await expect(b.node.backfill('not-a-peer', 0, 1)).rejects.toThrow(/peer/)
  })

  it('a malformed or oversized request gets an error frame, not a crash', async () => {
    const raw = await startRawNode()
    try {
      for (const [request, reason] of [
        [enc('{not json'), 'bad-request'],
        [enc('{"cursor":-1,"limit":2}'), 'bad-request'],
        [enc('[1,2]'), 'bad-request'],
        [enc(JSON.stringify({ cursor: 0, limit: 1, pad: 'x'.repeat(1000) })), 'request-too-large']
      ] as const) {
        const frames = await rawExchange(raw, a, request)
        expect(frames).toHaveLength(1)
        expect(frames[0]![0]).toBe(FRAME.ERROR)
        expect(JSON.parse(dec(frames[0]!.subarray(1))).reason).toBe(reason)
      }
      // A well-formed raw request gets items then END.
      const ok = await rawExchange(raw, a, enc('{"cursor":0,"limit":2}'))
      expect(ok.map(f => f[0])).toEqual([FRAME.ITEM, FRAME.ITEM, FRAME.END])
      expect(dec(ok[0]!.subarray(1))).toBe('envelope-1')
      expect(JSON.parse(dec(ok[2]!.subarray(1)))).toEqual({ next: 2 })
    } finally {
      await raw.stop()
    }
    // The server still serves.
    expect((await b.node.backfill(a.node.peerId, 0, 1)).items.map(dec)).toEqual(['envelope-1'])
  })
})

describe('back-fill limits', () => {
  const nodes: TestNode[] = []
  const raws: Libp2p[] = []
  let client: TestNode

  beforeAll(async () => {
    client = await startNode({ init: { backfill: { maxItemBytes: 1024, maxResponseBytes: 3000, timeoutMs: 1500 } } })
    nodes.push(client)
  })

  afterAll(async () => {
    await Promise.all([...nodes.map(async n => { await n.node.stop() }), ...raws.map(async r => { await r.stop() })])
  })

  async function server (source: BackfillSource, backfill = {}): Promise<TestNode> {
    const n = await startNode({ backfillSource: source, init: { backfill } })
    nodes.push(n)
    return n
  }

  async function rogue (respond: (lp: ReturnType<typeof lpStream>) => Promise<void>): Promise<string> {
    const raw = await startRawNode()
    raws.push(raw)
    await raw.handle(BACKFILL_PROTOCOL, async (stream) => {
      const lp = lpStream(stream)
      await lp.read()
      try {
        await respond(lp)
        await stream.close()
      } catch (err) {
        stream.abort(err as Error)
      }
    })
    return raw.getMultiaddrs()[0]!.toString()
  }

  it('a source that returns more items than asked is refused by the server', async () => {
    const s = await server(async ({ limit }) => ({ items: Array.from({ length: limit + 1 }, () => enc('x')), next: 99 }))
    const err = await expectBackfillError(client.node.backfill(s.node.multiaddrs()[0]!, 0, 3), 'too-many-items', true)
    expect(err.message).toMatch(/4 items, limit 3/)
  })

  it('a source item over the server\'s maxItemBytes is refused by the server', async () => {
    const s = await server(async () => ({ items: [enc('ok'), new Uint8Array(600)], next: 2 }), { maxItemBytes: 512 })
    const err = await expectBackfillError(client.node.backfill(s.node.multiaddrs()[0]!, 0, 3), 'item-too-large', true)
    expect(err.message).toMatch(/item 1 is 600 bytes, limit 512/)
  })

  it('a source that throws is reported as source-failed', async () => {
    const s = await server(async () => { throw new Error('disk on fire') })
    const err = await expectBackfillError(client.node.backfill(s.node.multiaddrs()[0]!, 0, 3), 'source-failed', true)
    // The server's internals stay private.
    expect(err.message).not.toMatch(/disk/)
  })

  it('the client refuses an item over its own maxItemBytes', async () => {
    const s = await server(async () => ({ items: [new Uint8Array(2048)], next: 1 }))
    await expectBackfillError(client.node.backfill(s.node.multiaddrs()[0]!, 0, 3), 'item-too-large', false)
  })

  it('the client refuses a response over its own maxResponseBytes', async () => {
    const s = await server(async () => ({ items: Array.from({ length: 4 }, () => new Uint8Array(1000)), next: 4 }))
    const err = await expectBackfillError(client.node.backfill(s.node.multiaddrs()[0]!, 0, 10), 'response-too-large', false)
    expect(err.message).toMatch(/3000/)
  })

  it('the client refuses more items than it asked for from a rogue peer', async () => {
    const addr = await rogue(async (lp) => {
      for (let i = 0; i < 5; i++) await lp.write(frame(FRAME.ITEM, enc(`item-${i}`)))
      await lp.write(frame(FRAME.END, enc('{"next":5}')))
    })
    const err = await expectBackfillError(client.node.backfill(addr, 0, 2), 'too-many-items', false)
    expect(err.message).toMatch(/2 items/)
  })

  it('the client reports a peer that closes before the final frame, an unknown frame and a bad END', async () => {
    const closes = await rogue(async (lp) => { await lp.write(frame(FRAME.ITEM, enc('one'))) })
    await expectBackfillError(client.node.backfill(closes, 0, 2), 'stream-closed', false)
    const unknown = await rogue(async (lp) => { await lp.write(frame(7, enc('?'))) })
    await expectBackfillError(client.node.backfill(unknown, 0, 2), 'bad-response', false)
    const badEnd = await rogue(async (lp) => { await lp.write(frame(FRAME.END, enc('{"next":-3}'))) })
    await expectBackfillError(client.node.backfill(badEnd, 0, 2), 'bad-response', false)
  })

  it('the client times out on a peer that never answers', async () => {
    const silent = await rogue(async () => { await new Promise(resolve => setTimeout(resolve, 5000)) })
    await expectBackfillError(client.node.backfill(silent, 0, 2), 'timeout', false)
  })

  it('a source that never answers frees its stream slot at the server timeout', async () => {
    const s = await server(async () => await new Promise<never>(() => {}), { maxConcurrentStreams: 1, timeoutMs: 300 })
    const addr = s.node.multiaddrs()[0]!
    // The server gives up at 300 ms and resets the stream; the client sees it closed.
    await expectBackfillError(client.node.backfill(addr, 0, 1), 'stream-closed', false)
    // The slot is free again: the next request is not answered busy (it times out the same way).
    await expectBackfillError(client.node.backfill(addr, 0, 1), 'stream-closed', false)
  })

  it('nine stalled streams from one peer take two slots: every other peer is still served, and the stalls are dropped at the request deadline', async () => {
    const s = await server(logSource(log), { requestTimeoutMs: 1000 })
    const addr = multiaddr(s.node.multiaddrs()[0]!)
    const staller = await startRawNode()
    raws.push(staller)
    // Nine streams that never send their request.
    const stalled = await Promise.all(Array.from({ length: 9 }, async () => await staller.dialProtocol(addr, BACKFILL_PROTOCOL)))
    const answers = await Promise.all(stalled.map(async st => {
      const lp = lpStream(st)
      try {
        const f = (await lp.read({ signal: AbortSignal.timeout(3000) })).subarray()
        return f[0] === FRAME.ERROR ? JSON.parse(dec(f.subarray(1))).reason as string : 'frame'
      } catch {
        return 'closed'
      }
    }))
    // Seven answered busy at once; two held until the request deadline, then dropped.
    expect(answers.filter(a => a === 'busy')).toHaveLength(7)
    expect(answers.filter(a => a === 'closed')).toHaveLength(2)
    // Meanwhile (and after) another peer's catch-up is served.
    expect((await client.node.backfill(s.node.multiaddrs()[0]!, 0, 2)).items.map(dec)).toEqual(['envelope-1', 'envelope-2'])
  })

  it('while nine streams of one peer stall, another peer is served at once', async () => {
    const s = await server(logSource(log))
    const addr = multiaddr(s.node.multiaddrs()[0]!)
    const staller = await startRawNode()
    raws.push(staller)
    await Promise.all(Array.from({ length: 9 }, async () => await staller.dialProtocol(addr, BACKFILL_PROTOCOL)))
    expect((await client.node.backfill(s.node.multiaddrs()[0]!, 0, 2)).items.map(dec)).toEqual(['envelope-1', 'envelope-2'])
  })

  it('refuses inbound streams beyond maxConcurrentStreams with busy, then serves again', async () => {
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    let entered = 0
    const s = await server(async ({ cursor }) => {
      entered++
      await gate
      return { items: [enc(`at-${cursor}`)], next: cursor + 1 }
    }, { maxConcurrentStreams: 2 })
    const addr = s.node.multiaddrs()[0]!
    const first = client.node.backfill(addr, 0, 1)
    const second = client.node.backfill(addr, 1, 1)
    // Wait until both are inside the source, holding their slots.
    for (let i = 0; i < 200 && entered < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
    expect(entered).toBe(2)
    const err = await expectBackfillError(client.node.backfill(addr, 2, 1), 'busy', true)
    expect(err.message).toMatch(/limit 2/)
    release()
    expect((await first).items.map(dec)).toEqual(['at-0'])
    expect((await second).items.map(dec)).toEqual(['at-1'])
    expect((await client.node.backfill(addr, 3, 1)).items.map(dec)).toEqual(['at-3'])
  })
})
