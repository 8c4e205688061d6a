import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runDevnet } from '../../../src/node/devnet/devnet.js'
import { createLocalEngine, EngineStartError, type LocalEngine } from '../../../src/node/engines/index.js'
import { ownEnginesAvailable } from '../../helpers/engine.js'

const available = ownEnginesAvailable('engines: a dockerd per node')
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const linkExists = (name: string): boolean => sh('ip', ['-o', 'link', 'show']).split('\n').some(l => l.split(': ')[1]?.split('@')[0] === name)
const namespaces = (): string[] => sh('ctr', ['namespaces', 'ls', '-q']).split('\n').filter(l => l !== '')
const stem = `nkt-${process.pid.toString(36).slice(-5)}`

describe.skipIf(!available)('a Docker engine of its own', () => {
  let dir: string
  const docker0 = (): string => sh('ip', ['-o', 'addr', 'show', 'dev', 'docker0'])
  let docker0Before: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'engines-'))
    docker0Before = docker0()
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('two engines start with their own ids, bridges and namespaces, build, and leave nothing behind when stopped', async () => {
    const engines: LocalEngine[] = [1, 2].map(i => createLocalEngine({}, { name: `${stem}-${i}`, dir: join(dir, `e${i}`) }))
    try {
      await Promise.all(engines.map(async e => { await e.start() }))
      const [a, b] = engines as [LocalEngine, LocalEngine]
      expect(a.engineId).toMatch(/\S/)
      expect(b.engineId).not.toBe(a.engineId)
      // The machine's engine is a third one, untouched.
      expect(sh('docker', ['info', '--format', '{{.ID}}']).trim()).not.toBe(a.engineId)
      for (const e of engines) {
        expect(linkExists(e.bridge)).toBe(true)
        const info = sh('docker', ['--host', e.dockerHost, 'info', '--format', '{{.ID}} {{.DockerRootDir}}']).trim()
        expect(info).toBe(`${e.engineId!} ${join(dir, e === a ? 'e1' : 'e2', 'data')}`)
      }
      // An image built on one engine is in its namespace only.
      const ctx = join(dir, 'ctx')
      execFileSync('mkdir', ['-p', ctx])
      await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY hello /hello\n')
      await writeFile(join(ctx, 'hello'), `hello ${stem}\n`)
      sh('docker', ['--host', a.dockerHost, 'buildx', 'build', '--load', '-t', `${stem}:a`, ctx])
      expect(sh('docker', ['--host', a.dockerHost, 'image', 'ls', '-q', `${stem}:a`]).trim()).not.toBe('')
      expect(sh('docker', ['--host', b.dockerHost, 'image', 'ls', '-q', `${stem}:a`]).trim()).toBe('')
      expect(namespaces()).toContain(a.namespace)
    } finally {
      for (const e of engines) await e.stop()
    }
    for (const e of engines) {
      expect(linkExists(e.bridge)).toBe(false)
      expect(existsSync(e.socketPath)).toBe(false)
      expect(namespaces().filter(n => n.startsWith(e.namespace))).toEqual([])
    }
    expect(existsSync(join(dir, 'e1'))).toBe(false)
    expect(docker0()).toBe(docker0Before)
  }, 180_000)

  it('a dockerd that dies during start is reported with its log, and its bridge is removed', async () => {
    const fake = join(dir, 'dockerd-fails')
    await writeFile(fake, '#!/bin/sh\necho "failed to start daemon: made to fail" >&2\nexit 1\n')
    await chmod(fake, 0o755)
    const e = createLocalEngine({}, { name: `${stem}-x`, dir: join(dir, 'ex'), dockerd: fake })
    const err = await e.start().then(() => undefined, (x: unknown) => x)
    expect(err).toBeInstanceOf(EngineStartError)
    expect((err as Error).name).toBe('EngineStartError')
    expect((err as Error).message).toMatch(/exited during start: .*made to fail/)
    expect(linkExists(e.bridge)).toBe(false)
    expect(existsSync(join(dir, 'ex'))).toBe(false)
    await e.stop()
    expect(docker0()).toBe(docker0Before)
  }, 60_000)

  it('a devnet whose second engine fails to start stops the first and removes every bridge', async () => {
    const real = sh('sh', ['-c', 'command -v dockerd || echo /usr/sbin/dockerd']).trim()
    const flaky = join(dir, 'dockerd-second-fails')
    await writeFile(flaky, `#!/bin/sh\ncase "$*" in *engine-2/data*) echo "failed to start daemon: engine 2 made to fail" >&2; exit 1;; esac\nexec ${real} "$@"\n`)
    await chmod(flaky, 0o755)
    const progress: string[] = []
    const err = await runDevnet({ nodes: 2, dockerd: flaky, timeoutMs: 60_000, onProgress: line => { progress.push(line) } }).then(() => undefined, (x: unknown) => x)
    expect(err).toBeInstanceOf(EngineStartError)
    expect((err as Error).message).toMatch(/engine 2 made to fail/)
    expect(progress.some(l => l.startsWith('stopping 2 Docker engines'))).toBe(true)
    // This devnet's engines (other devnets may run beside it): named in its progress.
    const devnetStem = progress.map(l => /bridges (nkd-[0-9a-f]{6})-1/.exec(l)?.[1]).find(x => x != null)
    expect(devnetStem).toBeDefined()
    expect(linkExists(`${devnetStem!}-1`)).toBe(false)
    expect(linkExists(`${devnetStem!}-2`)).toBe(false)
    expect(namespaces().filter(n => n.startsWith(`neko-${devnetStem!}`))).toEqual([])
    expect(docker0()).toBe(docker0Before)
  }, 120_000)

  it('refuses a name that cannot name a bridge', () => {
    expect(() => createLocalEngine({}, { name: 'docker0-but-far-too-long', dir })).toThrow(EngineStartError)
  })
})
