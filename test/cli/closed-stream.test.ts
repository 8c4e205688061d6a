import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

interface Run { code: number | null, stdout: string, stderr: string }
const run = async (what: string): Promise<Run> => await new Promise(resolve => {
  execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'closed-stream-child.ts'), what], { env: { ...process.env, NEKO_LOG_FORMAT: 'json' }, timeout: 30_000 }, (err, stdout, stderr) => {
    resolve({ code: err == null ? 0 : (err as { code?: number }).code ?? null, stdout, stderr })
  })
})

// A peer leaving at the wrong moment makes yamux write on a closed stream from a microtask
// (StreamStateError, nothing to catch it): a node must not stop for that, and must still stop
// for anything else it did not catch.
describe('a node process and errors nothing caught', () => {
  it('logs a write on a closed stream and carries on, thrown or rejected', async () => {
    for (const what of ['stream', 'rejection']) {
      const r = await run(what)
      expect(r.code).toBe(0)
      expect(r.stdout).toBe('alive\n')
      expect(r.stderr).toMatch(/a write on a stream that had closed was dropped/)
    }
  }, 60_000)

  it('ends on any other uncaught error, exit 1 with its stack, after logging it', async () => {
    const r = await run('other')
    expect(r.code).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/uncaught error: exiting/)
    expect(r.stderr).toMatch(/TypeError: a bug/)
  }, 30_000)
})
