import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type Browser, type Locator, type Page } from 'playwright-core'
import { createFeedServer, type FeedServer } from '../../src/node/http/server.js'
import { COMMIT_2, COMMIT_4, makeKeys, REPO, seedOneEngineRelease, seedReleases, target, tempStore, testPolicy, type Keys, ingestFor } from './fixtures.js'
import { saveReport } from '../../src/node/divergence/reports.js'
import { causeRef } from '../../src/protocol/causes.js'
import { signDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'
import type { Store } from '../../src/node/store/types.js'
import { createScheduler } from '../../src/node/scheduler/index.js'
import { createLogger } from '../../src/node/logger.js'
import { createTestResultGossip } from '../../src/node/test-results/index.js'
import { signTestResult, type TestResult } from '../../src/protocol/test-result.js'

const CHROMIUM = process.env.NEKO_CHROMIUM ?? '/usr/bin/chromium'

/** Chromium missing: skip with a notice, unless NEKO_REQUIRE_BROWSER=1 (CI), where it fails. */
function browserAvailable (): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.NEKO_REQUIRE_BROWSER === '1') throw new Error(`dashboard: NEKO_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`)
  process.stderr.write(`[skip] dashboard: ${CHROMIUM} missing; run scripts/setup-host.sh to test in a real browser\n`)
  return false
}

const available = browserAvailable()

describe.skipIf(!available)('dashboard in headless Chromium', () => {
  let keys: Keys
  let server: FeedServer
  let base: string
  let browser: Browser
  let cleanup: () => Promise<void>
  let store: Store

  beforeAll(async () => {
    keys = makeKeys()
    const t = await tempStore()
    cleanup = t.cleanup
    store = t.store
    await seedReleases(t.store, keys)
    server = createFeedServer({ store: t.store, policy: testPolicy(keys) }, { host: '127.0.0.1', port: 0 })
    base = (await server.start()).url
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
  })

  /** The dashboard with the cell of TAG's base linux/amd64 opened, once its causes table shows. */
  async function openCauses (tag: string): Promise<{ page: Page, errors: string[], rows: Locator }> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    await page.goto(`${base}/`)
    await page.locator('table.matrix').waitFor()
    await page.locator(`button.cell[data-tag="${tag}"][data-variant="base"][data-platform="linux/amd64"]`).click()
    const rows = page.locator('#details section.causes tbody tr')
    await rows.first().waitFor()
    return { page, errors, rows }
  }

  afterAll(async () => {
    await browser?.close()
    await server?.stop()
    await cleanup?.()
  })

  it('shows the verdict matrix and opens a cell\'s claims', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })
    await page.goto(`${base}/`)
    await page.locator('table.matrix').waitFor()
    expect(await page.locator('#state').textContent()).toContain('4 releases')

    // One row per release, one column per (variant, platform).
    expect(await page.locator('table.matrix tbody tr').count()).toBe(4)
    expect(await page.locator('table.matrix thead th').count()).toBe(1 + 3)
    const cell = (tag: string, variant: string, platform: string) =>
      page.locator(`button.cell[data-tag="${tag}"][data-variant="${variant}"][data-platform="${platform}"]`)
    expect(await cell('v1', 'base', 'linux/amd64').getAttribute('data-status')).toBe('reproducible')
    expect(await cell('v1', 'base', 'linux/arm64').getAttribute('data-status')).toBe('disputed')
    expect(await cell('v1', 'app', 'linux/amd64').getAttribute('data-status')).toBe('failed')
    expect(await cell('v2', 'base', 'linux/amd64').getAttribute('data-status')).toBe('unreproducible')
    expect(await cell('v3', 'base', 'linux/amd64').getAttribute('data-status')).toBe('pending')
    // Colour follows the verdict, and the text says it too.
    const green = await cell('v1', 'base', 'linux/amd64').evaluate(e => getComputedStyle(e).backgroundColor)
    const red = await cell('v2', 'base', 'linux/amd64').evaluate(e => getComputedStyle(e).backgroundColor)
    expect(green).not.toBe(red)
    expect(await cell('v2', 'base', 'linux/amd64').textContent()).toContain('unreproducible')

    // Details are closed until a cell is pressed.
    expect(await page.locator('#details').isHidden()).toBe(true)
    const disputed = cell('v1', 'base', 'linux/arm64')
    expect(await disputed.getAttribute('aria-expanded')).toBe('false')
    await disputed.click()
    expect(await disputed.getAttribute('aria-expanded')).toBe('true')
    const details = page.locator('#details')
    await details.waitFor({ state: 'visible' })
    const text = (await details.textContent()) ?? ''
    expect(text).toContain('v1 · base · linux/arm64')
    expect(text).toContain('disputed')
    expect(text).toContain('operator-1')
    expect(text).toContain('operator-3')
    expect(text).toContain('first differing layer: #1')
    expect(text).toContain(keys.builders[0]!.keyId.slice(0, 24))

    // The reproducible cell lists trusted builders and the untrusted stranger with digests.
    await cell('v1', 'base', 'linux/amd64').click()
    expect(await disputed.getAttribute('aria-expanded')).toBe('false')
    const amd = (await details.textContent()) ?? ''
    expect(amd).toContain('reproducible')
    expect(amd).toContain('untrusted')
    expect(amd).toMatch(/sha256:[0-9a-f]{64}/)
    expect(await page.locator('#details .claims tbody tr').count()).toBe(4)

    // Keyboard: the cells are real buttons.
    await cell('v2', 'base', 'linux/amd64').focus()
    await page.keyboard.press('Enter')
    expect(await cell('v2', 'base', 'linux/amd64').getAttribute('aria-expanded')).toBe('true')
    expect((await details.textContent()) ?? '').toContain('unreproducible')

    // A failed target shows what the builder's log said, its colour codes made harmless.
    await cell('v1', 'app', 'linux/amd64').click()
    expect(await cell('v1', 'app', 'linux/amd64').textContent()).toContain('0 agree · 3 of 3 answered · need 2')
    const log = page.locator('#details pre.log')
    expect(await log.count()).toBe(1)
    const logText = (await log.textContent()) ?? ''
    expect(logText).toContain('#7 0.530 ?[31mmain.c:3: error: expected ; before }?[0m')
    expect(logText).toContain('#7 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2')
    expect(logText).not.toContain('\u001b')

    await cell('v1', 'base', 'linux/arm64').click()
    expect(await cell('v1', 'base', 'linux/arm64').textContent()).toContain('1 agree · 2 of 3 answered · need 2')
    await mkdir('test-artifacts', { recursive: true })
    await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true })
    expect(errors, errors.join('\n')).toEqual([])
    await page.close()
  })

  it('shows, for a dissenting target, the causes, files per cause, Dockerfile step and fix of its divergence reports', async () => {
    const claims = (await store.claimsForCommit(REPO, COMMIT_2)).filter(c => c.claim.result != null)
    const [a, b] = [claims[0]!, claims[1]!]
    const step = 'RUN apt-get install -y dbus fontconfig'
    const cause = (id: 'machine-id' | 'fontconfig-cache', count: number, paths: string[]): DivergenceReport['causes'][number] =>
      ({ ...causeRef(id), count, layers: [1], steps: [step], paths })
    const report: DivergenceReport = {
      target: target(COMMIT_2, 'base', 'linux/amd64', 'v2'),
      a: { claimId: a.id, keyId: a.keyId, manifestDigest: a.claim.result!.manifestDigest },
      b: { claimId: b.id, keyId: b.keyId, manifestDigest: b.claim.result!.manifestDigest },
      paths: { total: 50, explained: 50 },
      causes: [cause('fontconfig-cache', 48, ['var/cache/fontconfig/a.cache-9']), { ...cause('machine-id', 2, ['etc/machine-id', 'opt/instance-id']), evidence: ['opt/instance-id: holds a random 128-bit id, as /etc/machine-id does'] }],
      layers: [{ index: 1, step, causeCounts: { 'fontconfig-cache': 48, 'machine-id': 2 } }],
      fetched: { entries: 900, bytes: 90_000 },
      createdAt: new Date().toISOString()
    }
    const signer = keys.builders[0]!
    await saveReport(store, JSON.stringify(signDivergenceReport(report, signer)), report, signer.keyId)

    const { page, errors, rows } = await openCauses('v2')
    expect(await rows.count()).toBe(2)
    const first = (await rows.nth(0).textContent()) ?? ''
    expect(await rows.nth(0).getAttribute('data-cause')).toBe('fontconfig-cache')
    expect(first).toContain('48')
    expect(first).toContain(step)
    expect(first).toContain('rm -rf /var/cache/fontconfig')
    expect((await rows.nth(1).textContent()) ?? '').toContain('rm -f /etc/machine-id')
    // What the signer's own bytes showed, under the cause.
    expect(await rows.nth(1).locator('small.evidence').textContent()).toBe('opt/instance-id: holds a random 128-bit id, as /etc/machine-id does')
    expect((await page.locator('#details section.causes').textContent()) ?? '').toContain('50 differing paths, 50 with a known cause')
    // A reproducible target without dissent shows no such section.
    await page.locator('button.cell[data-tag="v4"][data-variant="base"][data-platform="linux/amd64"]').click()
    await page.locator('#details .claims').waitFor()
    expect(await page.locator('#details section.causes').count()).toBe(0)
    expect(errors, errors.join('\n')).toEqual([])
    await page.close()
  })
  it('shows a target\'s smoke test results beside its verdict: which image, passed or failed, the command', async () => {
    const claims = (await store.claimsForCommit(REPO, COMMIT_4)).filter(c => c.claim.result != null && c.claim.target.platform === 'linux/amd64')
    const c = claims[0]!
    const testResult: TestResult = {
      target: c.claim.target,
      manifestDigest: c.claim.result!.manifestDigest,
      recipe: c.claim.recipe,
      environment: c.claim.environment,
      result: 'PASSED',
      command: ['/usr/bin/neko', '--version'],
      gpu: false,
      exitCode: 0,
      startedOn: '2026-01-01T00:00:00.000Z',
      finishedOn: '2026-01-01T00:00:01.000Z'
    }
    const signer = keys.builders[0]!
    const gossip = createTestResultGossip({ store, policy: () => testPolicy(keys), log: createLogger({ level: 'silent' }).forComponent('test-results') })
    await gossip.receive(Buffer.from(JSON.stringify(signTestResult(testResult, signer))))

    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    await page.goto(`${base}/`)
    await page.locator('table.matrix').waitFor()
    await page.locator('button.cell[data-tag="v4"][data-variant="base"][data-platform="linux/amd64"]').click()
    const row = page.locator('#details section.tests tbody tr')
    await row.first().waitFor()
    expect(await row.count()).toBe(1)
    expect(await row.getAttribute('data-result')).toBe('PASSED')
    const text = (await row.textContent()) ?? ''
    expect(text).toContain('/usr/bin/neko --version')
    expect(text).toContain('the agreed image')
    // A target without results shows no such section.
    await page.locator('button.cell[data-tag="v4"][data-variant="base"][data-platform="linux/arm64"]').click()
    await page.locator('#details .claims').waitFor()
    expect(await page.locator('#details section.tests').count()).toBe(0)
    expect(errors, errors.join('\n')).toEqual([])
    await page.close()
  })

  it('groups divergence reports by cause and step, lists the pairs, and names the files of unknown causes', async () => {
    // v2: three builders, three digests. Reports for both orders of one pair and for another pair.
    const claims = (await store.claimsForCommit(REPO, COMMIT_2)).filter(c => c.claim.result != null)
    const [a, b, c] = [claims[0]!, claims[1]!, claims[2]!]
    const step = 'RUN apt-get install -y dbus fontconfig'
    const ref = (x: typeof a): DivergenceReport['a'] => ({ claimId: x.id, keyId: x.keyId, manifestDigest: x.claim.result!.manifestDigest })
    const report = (x: typeof a, y: typeof a, causes: DivergenceReport['causes']): DivergenceReport => ({
      target: target(COMMIT_2, 'base', 'linux/amd64', 'v2'),
      a: ref(x),
      b: ref(y),
      paths: { total: causes.reduce((n, k) => n + k.count, 0), explained: causes.filter(k => k.id !== 'unknown').reduce((n, k) => n + k.count, 0) },
      causes,
      layers: [{ index: 1, step, causeCounts: {} }],
      fetched: { entries: 900, bytes: 90_000 },
      createdAt: new Date().toISOString()
    })
    const fontconfig = { ...causeRef('fontconfig-cache'), count: 48, layers: [1], steps: [step], paths: ['var/cache/fontconfig/a.cache-9'] }
    const unknown = { ...causeRef('unknown'), count: 1, layers: [1], steps: [step], paths: ['opt/random.bin'] }
    const signerOf = (x: typeof a): typeof keys.builders[number] => keys.builders.find(k => k.keyId === x.keyId)!
    for (const [x, y, causes] of [[b, a, [fontconfig]], [a, c, [fontconfig, unknown]], [c, a, [fontconfig, unknown]]] as Array<[typeof a, typeof a, DivergenceReport['causes']]>) {
      const r = report(x, y, causes)
      await saveReport(store, JSON.stringify(signDivergenceReport(r, signerOf(x))), r, x.keyId)
    }

    const { page, errors, rows } = await openCauses('v2')
    // Four reports (the earlier test's a→b, and three here) over two pairs: one row per cause and step.
    expect(await rows.count()).toBe(3)
    expect(await rows.evaluateAll(rs => rs.map(r => r.getAttribute('data-cause')))).toEqual(['fontconfig-cache', 'machine-id', 'unknown'])
    const pair = (x: typeof a, y: typeof a): string => [x.keyId, y.keyId].sort().map(k => k.slice(0, 12)).join(' ↔ ')
    const pairsOf = async (i: number): Promise<string[]> => await rows.nth(i).locator('td.pairs span.pair').allTextContents()
    expect((await pairsOf(0)).sort()).toEqual([pair(a, b), pair(a, c)].sort())
    expect(await pairsOf(1)).toEqual([pair(a, b)])
    expect(await pairsOf(2)).toEqual([pair(a, c)])
    // An unknown cause names its file.
    expect(await rows.nth(2).locator('code.path').allTextContents()).toEqual(['opt/random.bin'])
    expect((await page.locator('#details section.causes').textContent()) ?? '').toContain('4 reports over 2 pairs of builders')
    expect(errors, errors.join('\n')).toEqual([])
    await page.close()
  })

  it('shows same-engine votes: counted once in the cell, each claim listed with the key it was counted as', async () => {
    await seedOneEngineRelease(store, keys, 'v5', '5'.repeat(40))
    const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    await page.goto(`${base}/`)
    await page.locator('table.matrix').waitFor()
    const button = page.locator('button.cell[data-tag="v5"][data-variant="base"][data-platform="linux/amd64"]')
    expect(await button.textContent()).toContain('unsettled')
    expect(await button.textContent()).toContain('1 agree (+2 same engine) · 3 of 3 answered · need 2')
    await button.click()
    const rows = page.locator('#details .claims tbody tr')
    await rows.first().waitFor()
    // Every builder's claim is there, its own node's included.
    expect(await rows.count()).toBe(3)
    const counted = [...keys.builders].map(k => k.keyId).sort()[0]!
    const text = await rows.allTextContents()
    expect(text.filter(t => t.includes(`same engine as ${counted.slice(0, 12)}, counted once`))).toHaveLength(2)
    expect(text.filter(t => t.includes('agrees'))).toHaveLength(1)
    const details = (await page.locator('#details').textContent()) ?? ''
    expect(details).toContain('1 trusted builder (+2 same engine)')
    expect(details).toContain('3 of 3 answered from 1 engine; threshold 2')
    expect(errors, errors.join('\n')).toEqual([])
    await page.close()
  })

  it('says when this node\'s host is broken, and how to retry', async () => {
    const id = `${REPO}@${COMMIT_2}#base@linux/amd64`
    const reason = 'the engine could not set up a build step\'s network: adding interface veth1 to bridge docker0 failed: Device does not exist'
    await store.putJob({ id, target: target(COMMIT_2, 'base', 'linux/amd64', 'v2'), announcementId: 'x', recipe: { name: 'r', digest: `sha256:${'1'.repeat(64)}` }, state: 'broken', attempts: 3, lastError: reason, updatedAt: '2026-01-02T03:04:05.000Z' })
    // The scheduler reads the broken job back at start, as after a restart.
    const scheduler = createScheduler({ store, ingest: ingestFor(store), identity: keys.builders[0]!, capabilities: () => undefined, publishClaim: async () => {} })
    await scheduler.start()
    const withJobs = createFeedServer({ store, policy: testPolicy(keys), host: () => scheduler.health() }, { host: '127.0.0.1', port: 0 })
    const url = (await withJobs.start()).url
    const page = await browser.newPage()
    try {
      await page.goto(`${url}/`)
      await page.locator('#host').waitFor()
      const text = (await page.locator('#host').textContent()) ?? ''
      expect(text).toContain('host is broken since 2026-01-02T03:04:05.000Z')
      expect(text).toContain('Device does not exist')
      expect(text).toContain(`neko-rebuilder jobs retry '${id}'`)
      // A feed without a build queue shows nothing of the kind.
      await page.goto(`${base}/`)
      await page.locator('table.matrix').waitFor()
      expect(await page.locator('#host').isHidden()).toBe(true)
    } finally {
      await page.close()
      await scheduler.stop()
      await withJobs.stop()
    }
  })
})
