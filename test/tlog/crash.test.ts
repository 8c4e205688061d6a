import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import { exportPrivatePem, generateIdentity } from '../../src/protocol/keys.js'
import { openNote, parseCheckpoint } from '../../src/protocol/tlog/index.js'


describe('transparency log under kill -9', () => {
  const dirs: string[] = []
  afterAll(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

  it('never leaves a checkpoint the stored entries cannot prove, and catches up with the store', async () => {
    const identity = generateIdentity()
    const dir = await mkdtemp(join(tmpdir(), 'neko-tlog-crash-'))
    dirs.push(dir)
    for (let round = 0; round < 3; round++) {
      // One process (no tsx wrapper), so SIGKILL hits the writer itself.
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), dir, Buffer.from(exportPrivatePem(identity)).toString('base64')], { stdio: ['ignore', 'pipe', 'inherit'], cwd: join(import.meta.dirname, '../..') })
      // Kill it in the middle of appending, once a few checkpoints are out.
      await new Promise<void>((resolve, reject) => {
        let seen = 0
        child.stdout.on('data', (d: Buffer) => {
          seen += d.toString().split('\n').filter(l => l.startsWith('checkpoint')).length
          if (seen >= 20) { child.kill('SIGKILL'); resolve() }
        })
        child.on('exit', code => { if (code !== null) reject(new Error(`the writer exited with ${code}`)) })
      })
      await new Promise(resolve => child.on('close', resolve))

      const store = await createStore({}, { path: join(dir, 'store') })
      const tlog = createTransparencyLog({ store, identity }, { path: join(dir, 'tlog') })
      // start() refuses a saved checkpoint that the stored entries do not prove.
      await tlog.start()
      const stats = await store.stats()
      expect(tlog.size()).toBe(stats.messages)
      const cp = parseCheckpoint(openNote(tlog.checkpoint() ?? '', tlog.origin, identity.publicKey).text)
      expect(cp.size).toBe(stats.messages)
      expect(stats.messages).toBeGreaterThan(round * 7)
      await tlog.stop()
      await store.close()
    }
  })
})
