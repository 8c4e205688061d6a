import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { loadPolicyFile } from '../../src/node/daemon/policy.js'

interface Run { code: number, stdout: string, stderr: string }

function cli (args: string[], env: Record<string, string> = {}, timeout = 180_000): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout, env: { ...process.env, NEKO_LOG_LEVEL: 'silent', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

/** One line, no stack frame. */
function expectOneLine (r: Run, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/^\s+at /m)
  expect(r.stderr.trim().split('\n')).toHaveLength(1)
  expect(r.stderr).toMatch(pattern)
}

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-errors-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('ordinary errors are one clear line', () => {
  it('keygen --out under /proc fails at once instead of looping', async () => {
    // A loop would run into the kill timeout and end without exit code 2.
    const r = await cli(['keygen', '--out', '/proc/neko-rebuilder-test/x'], {}, 120_000)
    expect(r.code).toBe(EXIT.ERROR)
    expectOneLine(r, /\/proc\/neko-rebuilder-test/)
  }, 300_000)

  it('a file in the way of the data directory is ENOTDIR in one line', async () => {
    await writeFile(join(dir, 'file'), 'x')
    const r = await cli(['join', '--data-dir', join(dir, 'file', 'node'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'])
    expect(r.code).toBe(EXIT.ERROR)
    expectOneLine(r, /not a directory: a file is in the way of .*\/file/)
  }, 300_000)

  it('a listen port in use names the address', async () => {
    const server: Server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const r = await cli(['join', '--data-dir', join(dir, 'busy'), '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--no-mdns'])
      expect(r.code).toBe(EXIT.ERROR)
      expectOneLine(r, new RegExp(`ListenError: cannot listen on /ip4/127\\.0\\.0\\.1/tcp/${port}: address already in use`))
      const h = await cli(['join', '--data-dir', join(dir, 'busy-http'), '--listen', '/ip4/127.0.0.1/tcp/0', '--http', `127.0.0.1:${port}`, '--no-mdns'])
      expect(h.code).toBe(EXIT.ERROR)
      expectOneLine(h, new RegExp(`address already in use: 127\\.0\\.0\\.1:${port}`))
    } finally {
      server.close()
    }
  }, 300_000)

  it('announce --to that is not a multiaddr is a usage error before anything is read', async () => {
    const r = await cli(['announce', '--repo', dir, '--tag', 'v1', '--key', join(dir, 'no-key'), '--to', 'garbage'])
    expect(r.code).toBe(EXIT.USAGE)
    expectOneLine(r, /--to garbage: not a multiaddr/)
    const noPeer = await cli(['announce', '--repo', dir, '--tag', 'v1', '--key', join(dir, 'no-key'), '--to', '/ip4/127.0.0.1/tcp/4088'])
    expect(noPeer.code).toBe(EXIT.USAGE)
    expectOneLine(noPeer, /names no peer: add \/p2p\/PEER_ID/)
  }, 300_000)

  it('--log-level is accepted by every command and checked', async () => {
    const bad = await cli(['--log-level', 'loud', 'keygen', '--out', join(dir, 'k0')])
    expect(bad.code).toBe(EXIT.USAGE)
    expectOneLine(bad, /argument 'loud' is invalid/)
    // Commander lists it under every command's Global Options; a few stand for all.
    for (const command of ['join', 'status', 'jobs', 'keygen']) {
      const help = await cli([command, '--help'])
      expect(help.code, command).toBe(EXIT.OK)
      expect(help.stdout, command).toContain('--log-level <level>')
    }
    // With info records on, the result on stdout stays apart from them.
    const r = await cli(['keygen', '--out', join(dir, 'k1'), '--log-level=debug', '--json'], { NEKO_LOG_LEVEL: '', NEKO_LOG_FORMAT: 'json' })
    expect(r.code).toBe(EXIT.OK)
    expect(JSON.parse(r.stdout)).toHaveProperty('peerId')
    expect(r.stderr).toMatch(/"msg":"wrote identity"/)
  }, 300_000)
})

describe('keys and trust policies without hand-written PEMs', () => {
  it('keygen and peer-id print the same peer id; policy writes a policy a node reads', async () => {
    const ids: Record<string, { keyId: string, peerId: string }> = {}
    for (const n of ['alice', 'bob', 'carol', 'maintainer']) {
      const r = await cli(['keygen', '--out', join(dir, 'keys', n), '--json'])
      expect(r.code).toBe(EXIT.OK)
      ids[n] = JSON.parse(r.stdout) as { keyId: string, peerId: string }
      expect(ids[n]?.peerId).toMatch(/^12D3KooW/)
      const p = await cli(['peer-id', join(dir, 'keys', n)])
      expect(p.stdout.trim()).toBe(ids[n]?.peerId)
      const fromPem = await cli(['peer-id', join(dir, 'keys', n, 'public.pem'), '--json'])
      expect(JSON.parse(fromPem.stdout)).toMatchObject({ keyId: ids[n]?.keyId, peerId: ids[n]?.peerId })
    }
    const out = join(dir, 'trust.json')
    const r = await cli(['policy', '--builder', join(dir, 'keys', 'alice'), '--builder', `bob@acme=${join(dir, 'keys', 'bob', 'public.pem')}`,
      '--builder', join(dir, 'keys', 'carol'), '--announcer', join(dir, 'keys', 'maintainer'), '--out', out])
    expect(r.code).toBe(EXIT.OK)
    const policy = await loadPolicyFile(out)
    expect(policy.builders.map(b => [b.name, b.operator, b.keyId])).toEqual([
      ['alice', 'alice', ids.alice?.keyId], ['bob', 'acme', ids.bob?.keyId], ['carol', 'carol', ids.carol?.keyId]
    ])
    expect(policy.announcers.map(a => a.keyId)).toEqual([ids.maintainer?.keyId])
    expect([policy.threshold, policy.minOperators, policy.allowedDissent]).toEqual([2, 2, 0])
    // Never overwritten by accident; an impossible threshold is refused with the field.
    const again = await cli(['policy', '--builder', join(dir, 'keys', 'alice'), '--out', out])
    expect(again.code).toBe(EXIT.ERROR)
    expectOneLine(again, /already exists/)
    const tooMany = await cli(['policy', '--builder', join(dir, 'keys', 'alice'), '--threshold', '2'])
    expect(tooMany.code).toBe(EXIT.ERROR)
    expectOneLine(tooMany, /threshold: 2 is more than the 1 builders/)
    expect(JSON.parse(await readFile(out, 'utf8'))).toHaveProperty('version', 1)
  }, 300_000)
})
