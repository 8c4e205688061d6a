import { browserAvailable, CHROMIUM } from '../helpers/browser.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TargetConsensus, TagConsensus } from '../../src/node/consensus/types.js'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { checkCosignature, encodeCheckpointMessage, parseCheckpoint, parseNote, witnessName } from '../../src/protocol/tlog/index.js'
import { SPLIT_VIEW_REASON } from '../../src/protocol/tlog/split-view.js'
import { announcement, claim, COMMIT_1, imageResult, put, target } from '../http/fixtures.js'
import { LOOPBACK, policyFor, waitFor } from '../node/helpers.js'
import { putMessages } from './messages.js'


/**
 * A builder whose log a node proved split is not counted in that node's own verdicts (HTTP
 * API, JSON feed, dashboard), as `status --node` does not count it: two real nodes on
 * loopback, the log's node and a witness that serves verdicts.
 */
describe('a proven split view in the node\'s own verdicts', () => {
  const logKey = generateIdentity()
  const witnessKey = generateIdentity()
  const other = generateIdentity()
  const third = generateIdentity()
  const maintainer = generateIdentity()
  // Two agreeing builders of two operators make a verdict; the third is outstanding.
  const policy = policyFor([logKey, other, third], [maintainer], 2)
  let dir: string
  let logNode: Daemon
  let witness: Daemon

  async function consensus (): Promise<TargetConsensus> {
    const res = await fetch(`${witness.httpUrl() ?? ''}/api/v1/consensus/v1`)
    expect(res.status).toBe(200)
    const body = await res.json() as TagConsensus
    expect(body.targets).toHaveLength(1)
    return body.targets[0] as TargetConsensus
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-split-verdicts-'))
    const start = async (identity: SigningIdentity, name: string, bootstrap: string[], trust: boolean): Promise<Daemon> => {
      const store = await createStore({}, { path: join(dir, name, 'store') })
      const d = await createDaemon({ identity, store, policy: trust ? policy : trustNobodyPolicy() }, {
        listen: [LOOPBACK], bootstrap, mdns: false, gossip: { heartbeatIntervalMs: 100 },
        // Every checkpoint pushed as it is signed: the fork below is forged at the newest size (the push budget has tests of its own).
        tlog: { path: join(dir, name, 'tlog'), checkpointIntervalMs: 50, witness: { pushBudget: false } },
        ...(trust ? { http: { host: '127.0.0.1', port: 0 } } : {})
      })
      await d.start()
      return d
    }
    logNode = await start(logKey, 'log', [], false)
    witness = await start(witnessKey, 'witness', [logNode.multiaddrs()[0] ?? ''], true)
    await waitFor('checkpoint meshes', () => [logNode, witness].every(d => (d.p2p.stats().mesh[TOPICS.checkpoints] ?? 0) >= 1))
    // The release and two agreeing claims, one of them by the key of the log about to split.
    await put(witness.store, signAnnouncement(announcement('v1', COMMIT_1, [['base', 'linux/amd64']]), maintainer))
    const good = imageResult('v1 base amd64')
    for (const b of [logKey, other]) await put(witness.store, signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'v1'), { result: good }), b))
  }, 60_000)

  afterAll(async () => {
    await witness?.stop()
    await logNode?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('counts the builder until its log is proven split, then sets it aside with the reason', async () => {
    const before = await consensus()
    expect(before.status).toBe('reproducible')
    expect(before.agreeing.map(c => c.keyId).sort()).toEqual([logKey.keyId, other.keyId].sort())
    expect(before.setAside).toEqual([])

    // The witness cosigns the log's real checkpoint of its newest size (5 entries of its own, and
    // what it back-fills from the witness node, whenever that arrives) ...
    await putMessages(logNode.store, 0, 5)
    await logNode.tlog?.sync()
    let size = 0
    await waitFor('the witness\'s cosignature on the log\'s newest checkpoint', async () => {
      await logNode.tlog?.sync()
      const note = parseNote(logNode.tlog?.checkpoint() ?? '')
      size = parseCheckpoint(note.text).size
      return size >= 5 && size === logNode.tlog?.size() && note.signatures.some(s => checkCosignature(note.text, s, witnessName(witnessKey.keyId), witnessKey.publicKey) !== undefined)
    }, 20_000)
    // ... then sees the same key sign another tree of that size.
    const forgedStore = await createStore({}, { path: join(dir, 'forged-store') })
    await putMessages(forgedStore, 1000, 1000 + size)
    const forged = createTransparencyLog({ store: forgedStore, identity: logKey }, { path: join(dir, 'forged-tlog') })
    await forged.start()
    try {
      await logNode.p2p.publish(TOPICS.checkpoints, encodeCheckpointMessage(forged.checkpoint() ?? '', [forged.vkey]))
      await waitFor('a split view on the witness', () => (witness.stats().tlog?.witness.splitViews ?? []).includes(logKey.keyId), 20_000)
    } finally {
      await forged.stop()
      await forgedStore.close()
    }

    // Nothing new in the store, yet the served verdict changed: the split builder is set aside.
    const after = await consensus()
    expect(after.agreeing.map(c => c.keyId)).toEqual([other.keyId])
    expect(after.setAside).toEqual([{ keyId: logKey.keyId, operator: 'operator-0', reason: SPLIT_VIEW_REASON }])
    expect(after.status).toBe('pending')
    // It answered (and was thrown out); only the third builder is still awaited.
    expect(after.trustedCount).toBe(2)
    expect(after.outstanding).toBe(1)

    // The JSON feed's verdicts come from the same place.
    const feed = await (await fetch(`${witness.httpUrl() ?? ''}/feed.json`)).json() as { items: Array<{ title: string }> }
    expect(feed.items.map(i => i.title)).toContain('v1 base linux/amd64: pending')
    expect(feed.items.map(i => i.title)).not.toContain('v1 base linux/amd64: reproducible')
  }, 60_000)

  it.runIf(browserAvailable('split-view dashboard'))('names the set-aside builder and why on the dashboard', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] })
    try {
      const page = await browser.newPage()
      await page.goto(`${witness.httpUrl() ?? ''}/`)
      const cell = page.locator('button.cell[data-tag="v1"][data-variant="base"][data-platform="linux/amd64"]')
      await cell.waitFor()
      await cell.click()
      const details = page.locator('#details')
      await details.locator('.claims').waitFor()
      const text = await details.textContent() ?? ''
      expect(text).toContain('Set-aside keys')
      expect(text).toContain(`${logKey.keyId.slice(0, 24)}: ${SPLIT_VIEW_REASON}`)
    } finally {
      await browser.close()
    }
  })
})
