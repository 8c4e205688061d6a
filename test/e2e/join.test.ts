import { spawn, type ChildProcess } from 'node:child_process'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFixtureProject, type FixtureProject } from '../../src/node/devnet/fixture-project.js'
import { writeIdentity } from '../../src/node/identity-files.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { parsePolicy } from '../../src/protocol/policy.js'
import { engineAvailable, ownEnginesAvailable } from '../helpers/engine.js'
import { storeVerdicts } from '../node/helpers.js'

const available = engineAvailable('join end to end')
// The devnet's default form starts a dockerd per node (root); the rest needs the engine alone.
const ownEngines = available && ownEnginesAvailable('devnet on engines of its own')
const MAIN = join(import.meta.dirname, '../../src/cli/main.ts')

interface NodeProcess {
  child: ChildProcess
  summary: { peerId: string, keyId: string, listen: string[] }
  /** Parsed JSON log lines from stderr, as they arrive. */
  logs: Array<Record<string, unknown>>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
}

function cli (args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: join(import.meta.dirname, '../..'),
    env: { ...process.env, NEKO_LOG_FORMAT: 'json', NEKO_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
}

async function startJoin (args: string[], env: Record<string, string> = {}): Promise<NodeProcess> {
  const child = cli(['join', '--json', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', ...args], env)
  const logs: Array<Record<string, unknown>> = []
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))
  createInterface({ input: child.stderr! }).on('line', line => {
    try { logs.push(JSON.parse(line) as Record<string, unknown>) } catch { logs.push({ msg: line }) }
  })
  const summary = await new Promise<NodeProcess['summary']>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! })
    rl.once('line', line => { resolve(JSON.parse(line) as NodeProcess['summary']) })
    void exited.then(r => { reject(new Error(`join exited early (${String(r.code)}): ${JSON.stringify(logs.slice(-5))}`)) })
  })
  return { child, summary, logs, exited }
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Names of this machine's network interfaces. */
const links = (): string[] => execFileSync('ip', ['-o', 'link', 'show']).toString().split('\n').map(l => l.split(': ')[1] ?? '').filter(n => n !== '').sort()

/** Claims a node stored: its own (signed after a build) and its peers' (from gossip or back-fill). */
const storedClaims = (p: NodeProcess): Set<unknown> => new Set(p.logs.filter(l => l.msg === 'claim stored' || l.msg === 'build finished; claim signed').map(l => l.id))

describe.skipIf(!available)('neko-rebuilder join, announce and devnet as processes', () => {
  let root: string
  let project: FixtureProject
  const keys: SigningIdentity[] = []
  let announcer: SigningIdentity
  let policyFile: string

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'neko-e2e-'))
    project = await createFixtureProject({ dir: join(root, 'project') })
    for (let i = 0; i < 2; i++) {
      const id = generateIdentity()
      await writeIdentity(join(root, `key-${i}`), id)
      keys.push(id)
    }
    announcer = generateIdentity()
    await writeIdentity(join(root, 'announcer'), announcer)
    policyFile = join(root, 'policy.json')
    await writeFile(policyFile, JSON.stringify({
      version: 1,
      builders: keys.map((k, i) => ({ name: `node-${i}`, operator: `op-${i}`, publicKey: k.publicKeyPem })),
      announcers: [{ name: 'release', publicKey: announcer.publicKeyPem }],
      threshold: 2,
      minOperators: 2,
      allowedDissent: 0
    }))
  })

  afterAll(async () => {
    if (root != null) await rm(root, { recursive: true, force: true })
  })

  it('two join processes connect, build what announce --to sends, and stop cleanly on SIGTERM', async () => {
    const a = await startJoin(['--data-dir', join(root, 'data-0'), '--key', join(root, 'key-0'), '--policy', policyFile])
    let b: NodeProcess | undefined
    let aStopped = false
    try {
      expect(a.summary.keyId).toBe(keys[0]!.keyId)
      // Settings from the environment: bootstrap and policy.
      // A second bootstrap address where nobody listens: the node says so, with the address.
      const dead = `/ip4/127.0.0.1/tcp/1/p2p/${a.summary.peerId.slice(0, -4)}AAAA`
      b = await startJoin(['--data-dir', join(root, 'data-1'), '--key', join(root, 'key-1')], { NEKO_BOOTSTRAP: `${a.summary.listen[0]!},${dead}`, NEKO_POLICY: policyFile })
      await waitFor('the nodes to connect', () => a.logs.some(l => l.msg === 'peer connected' && l.peer === b!.summary.peerId) && b!.logs.some(l => l.msg === 'peer connected' && l.peer === a.summary.peerId), 20_000)
      await waitFor('the dead bootstrap address to be reported', () => b!.logs.some(l => l.msg === 'bootstrap peer unreachable' && l.level === 30 && l.addr === dead && /ECONNREFUSED/.test(String(l.error))), 20_000)

      const announce = cli(['announce', '--repo', project.repository, '--tag', project.tag, '--commit', project.commit, '--key', join(root, 'announcer'), '--platform', 'linux/amd64', '--to', b.summary.listen[0]!])
      let announceErr = ''
      let announceOut = ''
      announce.stderr!.on('data', (d: Buffer) => { announceErr += d.toString() })
      announce.stdout!.on('data', (d: Buffer) => { announceOut += d.toString() })
      const code = await new Promise<number | null>(resolve => announce.on('exit', resolve))
      expect(code, announceErr).toBe(0)
      // The result on stdout, apart from log records on stderr.
      expect(announceOut).toMatch(/^sent .* to [1-9]\d* peer\(s\)/)
      expect(announceErr).not.toMatch(/sent .* peer\(s\)/)

      // A key the policy does not list as an announcer: refused before anything is sent...
      const refusedRun = async (args: string[]): Promise<{ code: number | null, out: string, err: string }> => {
        const p = cli(['announce', '--repo', project.repository, '--tag', project.tag, '--commit', project.commit, '--key', join(root, 'key-1'), '--platform', 'linux/amd64', '--to', b!.summary.listen[0]!, ...args])
        let out = ''
        let err = ''
        p.stdout!.on('data', (d: Buffer) => { out += d.toString() })
        p.stderr!.on('data', (d: Buffer) => { err += d.toString() })
        return { code: await new Promise<number | null>(resolve => p.on('exit', resolve)), out, err }
      }
      const checked = await refusedRun(['--policy', policyFile])
      expect(checked.code).toBe(2)
      expect(checked.err).toContain(`AnnouncerNotTrustedError: key ${keys[1]!.keyId} is not an announcer of ${policyFile}`)
      expect(checked.out + checked.err).not.toMatch(/^sent /m)
      // ...and without --policy the node that refuses it says so once, naming the tag and the key.
      const unchecked = await refusedRun([])
      expect(unchecked.code).toBe(0)
      expect(unchecked.out).toContain('accepted only by nodes whose policy lists this key as an announcer')
      const refusals = (): Array<Record<string, unknown>> => b!.logs.filter(l => l.level === 40 && l.tag === project.tag && String(l.msg).includes('refused'))
      await waitFor('the refusal logged', () => refusals().length > 0, 20_000)
      expect(refusals()[0]).toMatchObject({ keyId: keys[1]!.keyId, reason: expect.stringContaining('not an announcer of the policy') })

      await waitFor('both claims on both nodes', () => storedClaims(a).size >= 2 && storedClaims(b!).size >= 2, 120_000)
      a.child.kill('SIGTERM')
      aStopped = true
      await waitFor('b to see a leave', () => b!.logs.some(l => l.msg === 'peer disconnected' && l.level === 30 && l.peer === a.summary.peerId), 20_000)
    } finally {
      // A second SIGTERM would force an exit (130): one each.
      if (!aStopped) a.child.kill('SIGTERM')
      b?.child.kill('SIGTERM')
    }
    expect(await a.exited, 'a').toEqual({ code: 0, signal: null })
    expect(await b!.exited, JSON.stringify(b!.logs.slice(-6))).toEqual({ code: 0, signal: null })
    expect(a.logs.some(l => l.msg === 'node stopped')).toBe(true)

    // The stores were closed (the lock is free) and hold what was acknowledged.
    const policy = parsePolicy(JSON.parse(JSON.stringify({
      version: 1,
      builders: keys.map((k, i) => ({ name: `node-${i}`, operator: `op-${i}`, publicKey: k.publicKeyPem })),
      announcers: [{ name: 'release', publicKey: announcer.publicKeyPem }],
      threshold: 2,
      minOperators: 2,
      allowedDissent: 0
    })))
    for (const dir of ['data-0', 'data-1']) {
      const store = await createStore({}, { path: join(root, dir, 'store') })
      try {
        const claims = await store.claimsForCommit(project.repository, project.commit)
        expect(claims).toHaveLength(2)
        const [v] = await storeVerdicts(store, policy, project.repository, project.commit)
        // Both nodes built on this machine's one engine: their agreement is one witness.
        expect(claims[0]!.claim.environment.engine.id).toBeDefined()
        expect(claims[1]!.claim.environment.engine.id).toBe(claims[0]!.claim.environment.engine.id)
        expect(v!.agreeing).toHaveLength(1)
        expect(v!.sameEngine).toHaveLength(1)
        // Both builders answered: no quorum can form, and nobody is left to wait for.
        expect(v!.status).toBe('unsettled')
        expect(v!.reason).toBe('2 of 2 answered from 1 engine; threshold 2, 2 operators (1 among the votes)')
        expect((await store.listJobs('done')).length).toBe(1)
      } finally {
        await store.close()
      }
    }
  }, 200_000)

  it('join --watch announces a tag pushed after it started', async () => {
    const watched = await mkdtemp(join(root, 'watched-'))
    const repo = await createFixtureProject({ dir: watched, tag: 'v0.1.0' })
    const node = await startJoin(['--data-dir', join(root, 'data-watch'), '--key', join(root, 'key-0'), '--policy', policyFile,
      '--watch', repo.repository, '--announce-key', join(root, 'announcer'), '--watch-interval', '1'])
    try {
      await waitFor('the existing tags recorded', () => node.logs.some(l => l.component === 'watch' && String(l.msg).includes('existing tags recorded')), 20_000)
      await promisify(execFile)('git', ['tag', 'v0.2.0'], { cwd: watched })
      await waitFor('the new tag announced', () => node.logs.some(l => l.msg === 'new tag announced' && l.tag === 'v0.2.0'), 20_000)
      expect(node.logs.some(l => l.msg === 'new tag announced' && l.tag === 'v0.1.0')).toBe(false)
    } finally {
      node.child.kill('SIGTERM')
    }
    expect((await node.exited).code).toBe(0)
  }, 60_000)

  it.skipIf(!ownEngines)('devnet --nodes 3 --json runs each node on its own engine and reports the fixture release reproducible with k = 2, each node\'s log lines naming it', async () => {
    const child = cli(['devnet', '--nodes', '3', '--json'])
    let out = ''
    let err = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
    expect(code, err).toBe(0)
    const result = JSON.parse(out) as { reproducible: boolean, threshold: number, engines: string, targets: Array<{ status: string, digest: string, agreeing: unknown[], sameEngine: unknown[] }>, nodes: Array<{ peerId: string, engineId: string, bridge: string, verdicts: Array<{ status: string, digest: string }> }> }
    expect(result.reproducible).toBe(true)
    // Three nodes on three engines are three votes: k = 2 is met by real independent builds.
    expect(result.engines).toBe('own')
    expect(result.threshold).toBe(2)
    expect(new Set(result.nodes.map(n => n.engineId)).size).toBe(3)
    expect(result.nodes.map(n => n.engineId)).not.toContain(execFileSync('docker', ['info', '--format', '{{.ID}}']).toString().trim())
    expect(result.targets).toHaveLength(1)
    expect(result.targets[0]!.status).toBe('reproducible')
    expect(result.targets[0]!.agreeing).toHaveLength(3)
    expect(result.targets[0]!.sameEngine).toHaveLength(0)
    expect(result.nodes).toHaveLength(3)
    for (const n of result.nodes) expect(n.verdicts[0]!.digest).toBe(result.targets[0]!.digest)
    // The engines' bridges went with them.
    const bridges = result.nodes.map(n => n.bridge)
    expect(new Set(bridges).size).toBe(3)
    for (const b of bridges) expect(b).toMatch(/^nkd-[0-9a-f]{6}-[123]$/)
    expect(links().filter(l => bridges.includes(l))).toEqual([])

    // One log stream, three nodes: every record of a node's services carries its policy name
    // and the end of its peer id.
    const records = err.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
    const ofNodes = records.filter(r => ['daemon', 'scheduler', 'rebuilder', 'p2p', 'store', 'tlog'].includes(String(r.component)))
    expect(ofNodes.length).toBeGreaterThan(0)
    for (const r of ofNodes) expect(r.node, JSON.stringify(r)).toMatch(/^node-[123]$/)
    const peers = new Map<unknown, Set<unknown>>()
    for (const r of ofNodes) peers.set(r.node, (peers.get(r.node) ?? new Set()).add(r.nodePeer))
    expect([...peers.keys()].sort()).toEqual(['node-1', 'node-2', 'node-3'])
    result.nodes.forEach((n, i) => { expect([...peers.get(`node-${i + 1}`)!]).toEqual([n.peerId.slice(-8)]) })
    const signed = records.filter(r => r.msg === 'build finished; claim signed')
    expect(new Set(signed.map(r => r.node)).size).toBe(3)
  }, 180_000)
})
