/**
 * The witnessed log end to end: real nodes gossip checkpoints and cosign them, and the real
 * CLI (`verify BUNDLE --policy P`, `status TAG --node URL --policy P`) demands the policy's
 * witnesses; a log that stops answering proof requests is reported by status and not cosigned.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { TOPICS } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import type { Store } from '../../src/node/store/types.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import type { TrustPolicy } from '../../src/protocol/policy.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { checkCosignature, encodeCheckpointMessage, parseCheckpoint, parseNote, witnessName } from '../../src/protocol/tlog/index.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import { announcement, COMMIT_4, makeKeys, policyJson, put, seedReleases, testPolicy, type Keys } from '../http/fixtures.js'
import { LOOPBACK, waitFor } from '../node/helpers.js'

interface Run { code: number, stdout: string, stderr: string }

/** The real CLI, as a user runs it. */
async function neko (args: string[]): Promise<Run> {
  return await new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: process.cwd(),
      env: { ...process.env, NEKO_LOG_LEVEL: 'silent' },
      timeout: 60_000
    }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

describe('witnessed claims through the CLI, against real nodes', () => {
  const w = [generateIdentity(), generateIdentity(), generateIdentity()] as [SigningIdentity, SigningIdentity, SigningIdentity]
  const quiet = generateIdentity()
  const daemons = new Map<string, Daemon>()
  let keys: Keys
  let dir: string
  let url: string

  async function start (name: string, identity: SigningIdentity, policy: TrustPolicy, bootstrap: string[], http = false, seed?: (s: Store) => Promise<unknown>): Promise<Daemon> {
    const store = await createStore({}, { path: join(dir, name, 'store') })
    await seed?.(store)
    const d = await createDaemon({ identity, store, policy }, {
      listen: [LOOPBACK],
      bootstrap,
      mdns: false,
      // Short gossip memory, so an idle log's re-announcement is not dropped as already seen.
      gossip: { heartbeatIntervalMs: 100, seenTtlMs: 1000 },
      tlog: { path: join(dir, name, 'tlog'), checkpointIntervalMs: 50, republishIntervalMs: 1500 },
      ...(http ? { http: { host: '127.0.0.1', port: 0 } } : {})
    })
    await d.start()
    daemons.set(name, d)
    return d
  }

  /** Policy witnesses among `of` whose valid cosignature the checkpoint carries. */
  function cosignedBy (note: string, of: SigningIdentity[]): SigningIdentity[] {
    const n = parseNote(note)
    return of.filter(x => n.signatures.some(s => checkCosignature(n.text, s, witnessName(x.keyId), x.publicKey) !== undefined))
  }

  async function policyFile (name: string, threshold: number, witnesses: SigningIdentity[]): Promise<string> {
    const file = join(dir, name)
    await writeFile(file, JSON.stringify({
      ...policyJson(keys) as object,
      witnesses: { threshold, keys: witnesses.map((x, i) => ({ name: `witness-${i}`, publicKey: x.publicKeyPem })) }
    }))
    return file
  }

  beforeAll(async () => {
    keys = makeKeys()
    dir = await mkdtemp(join(tmpdir(), 'neko-tlog-cli-'))
    // The log's node holds signed releases before it starts: its first checkpoint goes out
    // only as the idle re-announcement.
    const a = await start('a', w[0], testPolicy(keys), [], true, async s => await seedReleases(s, keys))
    url = a.httpUrl() ?? ''
    const boot = [a.multiaddrs()[0] ?? '']
    await start('b', w[1], testPolicy(keys), boot)
    await start('c', w[2], testPolicy(keys), boot)
    await waitFor('A\'s checkpoint cosigned by B and C', () => cosignedBy(a.tlog?.checkpoint() ?? '', [w[1], w[2]]).length === 2, 30_000)
  }, 60_000)

  afterAll(async () => {
    for (const d of daemons.values()) await d.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('verify BUNDLE passes with enough witnesses, and names each claim that falls short', async () => {
    const bundle = join(dir, 'v4.jsonl')
    await writeFile(bundle, await (await fetch(`${url}/claims.intoto.jsonl?tag=v4&inclusion=1`)).text())
    const ok = await neko(['verify', bundle, '--policy', await policyFile('two.json', 2, [w[1], w[2]])])
    expect(ok.stderr).not.toContain('not counted')
    expect(ok.stdout).toContain('reproducible')
    expect(ok.code).toBe(0)

    const short = await neko(['verify', bundle, '--policy', await policyFile('three.json', 3, [w[1], w[2], quiet])])
    const refused = short.stderr.split('\n').filter(l => l.includes('not counted'))
    // Every claim of v4 (two builders, two platforms) is named, with the reason.
    expect(refused).toHaveLength(4)
    for (const l of refused) expect(l).toMatch(/^.*v4\.jsonl:\d+: claim by [0-9a-f]{16} not counted: .*cosigned by 2 of the policy's witnesses, 3 needed/)
    expect(short.code).toBe(4)
    expect(short.stdout).toContain('pending')

    // Without the evidence lines nothing is proven.
    const bare = join(dir, 'v4-bare.jsonl')
    await writeFile(bare, await (await fetch(`${url}/claims.intoto.jsonl?tag=v4`)).text())
    const none = await neko(['verify', bare, '--policy', await policyFile('one.json', 1, [w[1]])])
    expect(none.stderr).toMatch(/claim by [0-9a-f]{16} not counted: no inclusion proof/)
    expect(none.code).toBe(4)
  }, 120_000)

  it('status TAG --node URL passes with enough witnesses, and names each claim that falls short', async () => {
    const ok = await neko(['status', 'v4', '--node', url, '--policy', await policyFile('two.json', 2, [w[1], w[2]])])
    expect(ok.stderr).toContain('4 of 4 claims are in a checkpoint cosigned by at least 2 of the policy\'s witnesses')
    expect(ok.stdout).toContain('overall: reproducible')
    expect(ok.code).toBe(0)

    const short = await neko(['status', 'v4', '--node', url, '--policy', await policyFile('three.json', 3, [w[1], w[2], quiet])])
    const refused = short.stderr.split('\n').filter(l => l.includes('not counted'))
    expect(refused).toHaveLength(4)
    for (const l of refused) expect(l).toMatch(/^neko-rebuilder: claim [0-9a-f]{16} by [0-9a-f]{16} not counted: .*cosigned by 2 of the policy's witnesses, 3 needed/)
    expect(short.stderr).toContain('0 of 4 claims are in a checkpoint cosigned by at least 3 of the policy\'s witnesses')
    expect(short.stdout).toContain('overall: pending')
    expect(short.code).toBe(4)
  }, 120_000)

  it('reports a log that stops answering proof requests, cosigns none of it meanwhile, and trusts it again once it answers', async () => {
    const a = daemons.get('a') as Daemon
    const boot = [a.multiaddrs()[0] ?? '']
    // Log E (the releases it back-fills from A) is seen and cosigned …
    let e = await start('e', quiet, testPolicy(keys), boot)
    await waitFor('A cosigns E', () => e.tlog?.checkpointSize() === a.tlog?.size() && cosignedBy(e.tlog?.checkpoint() ?? '', [w[0]]).length === 1, 30_000)
    const seenSize = e.tlog?.checkpointSize() ?? 0
    const cosignedBefore = a.stats().tlog?.witness.cosigned ?? 0
    await e.stop()
    daemons.delete('e')
    // … then signs size 9 while its node is down, and the checkpoint reaches A through B.
    const store = await createStore({}, { path: join(dir, 'e', 'store') })
    for (const tag of ['v7', 'v8']) await put(store, signAnnouncement(announcement(tag, COMMIT_4, [['base', 'linux/amd64']]), keys.maintainer))
    const offline = createTransparencyLog({ store, identity: quiet }, { path: join(dir, 'e', 'tlog') })
    await offline.start()
    const note = offline.checkpoint() ?? ''
    expect(parseCheckpoint(parseNote(note).text).size).toBe(seenSize + 2)
    await offline.stop()
    await store.close()
    await daemons.get('b')?.p2p.publish(TOPICS.checkpoints, encodeCheckpointMessage(note, [offline.vkey]))
    await waitFor('A reports E unresponsive', async () => {
      const { items } = await (await fetch(`${url}/tlog/unresponsive`)).json() as { items: Array<{ logKeyId: string }> }
      return items.some(i => i.logKeyId === quiet.keyId)
    }, 30_000)
    const { items } = await (await fetch(`${url}/tlog/unresponsive`)).json() as { items: Array<Record<string, unknown>> }
    expect(items[0]).toMatchObject({ origin: `neko-rebuilder/log/${quiet.keyId}`, logKeyId: quiet.keyId, cosignedSize: seenSize, pendingSize: seenSize + 2 })
    expect(Date.parse(String(items[0]?.since))).toBeGreaterThan(Date.now() - 60_000)
    expect(a.stats().tlog?.witness.cosigned).toBe(cosignedBefore)

    const status = await neko(['status', 'v4', '--node', url, '--policy', await policyFile('two.json', 2, [w[1], w[2]])])
    expect(status.stderr).toMatch(new RegExp(`unresponsive log: the log of key ${quiet.keyId} has not answered proof requests since \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z \\(\\d+ failures, last: [^)]+\\); the node cosigns none of its checkpoints beyond size ${seenSize} meanwhile`))
    expect(status.code).toBe(0)

    // Back up, idle: its re-announced checkpoint makes A ask again, and the proof comes.
    e = await start('e', quiet, testPolicy(keys), [...boot, ...(daemons.get('b')?.multiaddrs().slice(0, 1) ?? [])])
    await waitFor('A trusts E again', async () => {
      const r = await (await fetch(`${url}/tlog/unresponsive`)).json() as { items: unknown[] }
      return r.items.length === 0
    }, 30_000)
    expect(a.stats().tlog?.witness.cosigned).toBeGreaterThan(cosignedBefore)
    await waitFor('E\'s newer checkpoint cosigned by A', () => e.tlog?.checkpointSize() === seenSize + 2 && cosignedBy(e.tlog?.checkpoint() ?? '', [w[0]]).length === 1, 30_000)
  }, 180_000)
})
