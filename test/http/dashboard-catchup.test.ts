import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser } from 'playwright-core'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import type { CatchUp } from '../../src/node/http/routes.js'
import { makeKeys, seedReleases, tempStore, testPolicy } from './fixtures.js'
import { browserAvailable, CHROMIUM } from '../helpers/browser.js'

const available = browserAvailable('dashboard catch-up')

describe.skipIf(!available)('the dashboard of a node still catching up', () => {
  let server: FeedServer
  let base: string
  let browser: Browser
  let cleanup: () => Promise<void>
  // What the node's back-fill says; the test moves it from behind to caught up.
  let catchUp: CatchUp = { behind: 12_345, perSecond: 850, etaSeconds: 15 }

  beforeAll(async () => {
    const keys = makeKeys()
    const t = await tempStore()
    cleanup = t.cleanup
    await seedReleases(t.store, keys)
    server = createFeedServer({ store: t.store, policy: testPolicy(keys), catchUp: () => catchUp }, { host: '127.0.0.1', port: 0 })
    base = (await server.start()).url
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
  })

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    await cleanup?.()
  })

  it('says how far behind it is and how long is left, and says nothing once caught up', async () => {
    const health = await (await fetch(`${base}/healthz`)).json() as { catchUp: CatchUp }
    expect(health.catchUp).toEqual(catchUp)
    const page = await browser.newPage()
    await page.goto(`${base}/`)
    await page.locator('table.matrix').waitFor()
    const line = page.locator('#catch-up')
    await line.waitFor()
    expect(await line.textContent()).toBe('Catching up: 12,345 messages behind its peers (850 a second, about 15 s left). Verdicts may still change.')
    catchUp = { behind: 0, perSecond: 0, etaSeconds: 0 }
    await page.reload({ waitUntil: 'networkidle' })
    await page.locator('table.matrix').waitFor()
    expect(await line.isHidden()).toBe(true)
    await page.close()
  })
})
