import { request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseBundle } from '../../src/protocol/bundle.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import type { Store } from '../../src/node/store/types.js'
import { COMMIT_1, announcement, claim, imageResult, makeKeys, put, target, tempStore, testPolicy } from './fixtures.js'

const LINES = 3000

describe('JSON Lines feed under back-pressure', () => {
  let store: Store
  let cleanup: () => Promise<void>
  let server: FeedServer
  let base: URL

  beforeAll(async () => {
    const keys = makeKeys()
    const t = await tempStore()
    store = t.store
    cleanup = t.cleanup
    const b = keys.builders[0]!
    await put(store, signAnnouncement(announcement('v1', COMMIT_1, [['v0', 'linux/amd64']]), keys.maintainer))
    // Long lines (12 layers each) so the socket fills and most writes wait for 'drain'.
    const layers = Array.from({ length: 12 }, (_, l) => `layer ${l}`)
    for (let i = 0; i < LINES; i++) {
      await put(store, signClaim(claim(target(COMMIT_1, `v${i}`, 'linux/amd64'), { result: imageResult(`r${i}`, layers) }), b))
    }
    server = createFeedServer({ store, policy: testPolicy(keys) }, { host: '127.0.0.1', port: 0 })
    base = new URL((await server.start()).url)
  }, 120_000)

  afterAll(async () => {
    await server?.stop()
    await cleanup?.()
  })

  // A release's feed is written line by line: each line may meet back-pressure.
  it.each([['a release', '/claims.intoto.jsonl?tag=v1', LINES + 1], ['the whole store', '/claims.intoto.jsonl', LINES + 1]])('a slow reader downloads %s as thousands of lines without a listener leak warning', async (_what, path, want) => {
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const req = request({ host: base.hostname, port: base.port, path, agent: false }, res => {
          const chunks: Buffer[] = []
          // Read in small sips with pauses, so the server meets back-pressure again and again.
          res.on('data', (c: Buffer) => {
            chunks.push(c)
            res.pause()
            setTimeout(() => res.resume(), 1)
          })
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
          res.on('error', reject)
        })
        req.on('error', reject)
        req.end()
      })
      const lines = body.split('\n').filter(l => l !== '')
      expect(lines).toHaveLength(want)
      expect(parseBundle(body, { allowEmbeddedKeys: true }).entries).toHaveLength(want)
      // Warnings are emitted on the next tick.
      await new Promise(resolve => setImmediate(resolve))
      expect(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message)).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  }, 60_000)
})
