import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { exportPrivatePem, generateIdentity } from '../../src/protocol/keys.js'
import { entryLeafHash, formatAddCheckpoint, formatCheckpoint, formatVerifierKey, MemoryTree, parseTlogSize, signNote } from '../../src/protocol/tlog/index.js'

const ROUNDS = 6

function treeOf (n: number, salt: string): MemoryTree {
  const t = new MemoryTree()
  for (let i = 0; i < n; i++) t.append(entryLeafHash('claim', createHash('sha256').update(`${salt}${i}`).digest('hex')))
  return t
}

async function startWitness (dir: string, pem: string, vkeys: string[]): Promise<{ child: ChildProcess, url: string, closed: Promise<unknown> }> {
  // One process (no tsx wrapper), so SIGKILL hits the witness itself.
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'witness-crash-child.ts'), dir, Buffer.from(pem).toString('base64'), JSON.stringify(vkeys)], { stdio: ['ignore', 'pipe', 'inherit'], cwd: join(import.meta.dirname, '../..') })
  const closed = new Promise(resolve => child.on('close', resolve))
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening (\S+)\n/.exec(out)
      if (m !== null) resolve(m[1] ?? '')
    })
    child.on('exit', code => { reject(new Error(`the witness exited with ${String(code)}`)) })
  })
  return { child, url, closed }
}

describe('an HTTP witness under kill -9', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('never cosigns two trees of one size, and never forgets a size it answered 200 for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'neko-witness-crash-'))
    dirs.push(dir)
    const witnessPem = exportPrivatePem(generateIdentity())
    // One log per round, so each round races two histories for the log's first cosignature.
    const logs = Array.from({ length: ROUNDS }, (_, i) => {
      const key = generateKeyPairSync('ed25519')
      const origin = `example.org/crash-log-${i}`
      return { origin, key: key.privateKey as KeyObject, vkey: formatVerifierKey(origin, key.publicKey), trees: [treeOf(64, `honest${i}-`), treeOf(64, `fork${i}-`)] }
    })
    const vkeys = logs.map(l => l.vkey)
    // origin → size → the roots the witness answered 200 for.
    const cosigned = new Map<string, Map<number, Set<string>>>()
    const highest = new Map<string, number>()
    let answered: () => void = () => {}
    const post = async (url: string, log: typeof logs[0], tree: MemoryTree, oldSize: number, size: number): Promise<{ status: number, size?: number }> => {
      const note = signNote(formatCheckpoint({ origin: log.origin, size, rootHash: tree.root(size) }), log.origin, log.key)
      const res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpoint(oldSize, oldSize > 0 && oldSize < size ? tree.consistencyProof(oldSize, size) : [], note).toString('utf8') })
      const text = await res.text()
      if (res.status === 200) {
        const bySize = cosigned.get(log.origin) ?? new Map<number, Set<string>>()
        bySize.set(size, (bySize.get(size) ?? new Set()).add(Buffer.from(tree.root(size)).toString('hex')))
        cosigned.set(log.origin, bySize)
        highest.set(log.origin, Math.max(highest.get(log.origin) ?? 0, size))
        answered()
      }
      return { status: res.status, ...(res.status === 409 ? { size: parseTlogSize(text) } : {}) }
    }
    /** Grows one history as far as the witness lets it, learning the cosigned size from 409s. */
    const race = async (url: string, log: typeof logs[0], tree: MemoryTree): Promise<void> => {
      let old = 0
      for (let size = 3; size <= 64; size += 7) {
        const r: { status: number, size?: number } = await post(url, log, tree, old, size).catch(() => ({ status: 0 }))
        if (r.status === 0) return // killed
        if (r.status === 200) old = size
        else if (r.status === 409 && r.size !== undefined && r.size <= size) old = r.size
        else if (r.status !== 409 && r.status !== 422) throw new Error(`unexpected status ${r.status}`)
      }
    }

    for (let round = 0; round <= ROUNDS; round++) {
      const { child, url, closed } = await startWitness(dir, witnessPem, vkeys)
      const base = `${url}/tlog`.replace(/\/tlog$/, '')
      // Whatever was answered 200 before a crash is still what the witness holds.
      for (const log of logs.slice(0, round)) {
        const top = highest.get(log.origin)
        if (top === undefined) continue
        for (const tree of log.trees) {
          const r = await post(base, log, tree, 0, Math.max(top, 3))
          expect(r.status, `${log.origin} after a restart`).toBe(409)
          expect(r.size).toBeGreaterThanOrEqual(top)
        }
      }
      if (round === ROUNDS) {
        child.kill('SIGKILL')
        break
      }
      const log = logs[round] as typeof logs[0]
      const first = new Promise<void>(resolve => { answered = resolve })
      const racing = Promise.all(log.trees.map(async t => await race(base, log, t)))
      // Killed while requests are in flight: after the first cosignature, before the last.
      await Promise.race([first, racing])
      await new Promise(resolve => setTimeout(resolve, Math.floor(Math.random() * 15)))
      child.kill('SIGKILL')
      await racing
      await closed
    }
    for (const [origin, bySize] of cosigned) {
      for (const [size, roots] of bySize) expect(roots.size, `${origin} at size ${size}`).toBe(1)
    }
    expect(cosigned.size).toBeGreaterThan(ROUNDS / 2)
  }, 120_000)
})
