import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { delimiter, join, resolve } from 'node:path'
import { componentLog, type ComponentLogger, type Logger } from '../logger.js'
import { dockerCli, dyingWithParent } from '../rebuilder/index.js'
import { EngineStartError } from './errors.js'

export interface LocalEngineInit {
  /**
   * Names the engine's bridge (an interface name: at most 15 characters, letters, digits and
   * `-`) and, prefixed with `neko-`, its containerd namespaces.
   */
  name: string
  /** The engine's own directory: data root, exec root, socket, pid file, config and log. Made on start, removed on stop. */
  dir: string
  /** The dockerd binary; found on PATH (or /usr/sbin, /usr/bin) when not given. */
  dockerd?: string
  /**
   * The machine's containerd, shared by every engine under its own namespaces; when its socket
   * does not exist dockerd starts a containerd of its own under the exec root.
   */
  containerdSocket?: string
  /** The bridge's address, `A.B.C.1/24`; a free 10.213.x.0/24 when not given. */
  subnet?: string
  /** Until the engine answers on its socket; 60 s by default. */
  startTimeoutMs?: number
  /** Until dockerd exits after SIGTERM, before it is killed; 30 s by default. */
  stopTimeoutMs?: number
}

export interface LocalEngineComponents {
  logger?: ComponentLogger
}

/** A Docker engine of its own (a separate dockerd), for one node of a network on one machine. */
export interface LocalEngine {
  readonly name: string
  /** `unix://…/docker.sock`: what DOCKER_HOST names, and what a rebuilder is given. */
  readonly dockerHost: string
  readonly socketPath: string
  readonly bridge: string
  /** The containerd namespace its images and BuildKit snapshots live in. */
  readonly namespace: string
  /** `docker info` ID, read once the engine answers (it lives in the data root). */
  readonly engineId: string | undefined
  start: () => Promise<void>
  /** Stops dockerd, empties its containerd namespaces, removes its bridge and directory. Safe to call twice, and after a failed start. */
  stop: () => Promise<void>
}

const DEFAULT_CONTAINERD = '/run/containerd/containerd.sock'
/** Interface names are at most 15 bytes (IFNAMSIZ - 1). */
const NAME = /^[a-z0-9][a-z0-9-]{0,14}$/
/** Build history lives in a namespace of its own beside the engine's (BuildKit's `_history` suffix). */
const HISTORY_SUFFIX = '_history'

function findDockerd (): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']
  return dirs.filter(d => d !== '').map(d => join(d, 'dockerd')).find(p => existsSync(p))
}

/** IPv4 ranges in `ip addr` / `ip route` text, as [first, last] numbers. */
function usedRanges (text: string): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const m of text.matchAll(/\b(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?\b/g)) {
    const ip = ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4])
    const bits = m[5] != null ? Number(m[5]) : 32
    const size = 2 ** (32 - bits)
    const first = Math.floor(ip / size) * size
    out.push([first, first + size - 1])
  }
  return out
}

/**
 * A 10.213.x.0/24 that no address or route of this machine overlaps, picked at random so that
 * devnets started side by side rarely try the same one.
 */
async function freeSubnet (): Promise<string> {
  const text = await dockerCli('ip', ['-4', '-o', 'addr', 'show']) + await dockerCli('ip', ['-4', 'route', 'show', 'table', 'all'])
  const used = usedRanges(text)
  const free = Array.from({ length: 254 }, (_, i) => i + 1).filter(x => {
    const first = ((10 << 24) >>> 0) + (213 << 16) + (x << 8)
    return !used.some(([a, b]) => a <= first + 255 && first <= b)
  })
  if (free.length === 0) throw new EngineStartError('no free 10.213.x.0/24 subnet on this machine for an engine bridge')
  return `10.213.${free[Math.floor(Math.random() * free.length)]!}.1/24`
}

/** One GET over the engine's socket: whether it answers `/_ping` with 200. */
async function pings (socketPath: string): Promise<boolean> {
  return await new Promise(resolve => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, res => { res.resume(); resolve(res.statusCode === 200) })
    req.on('error', () => resolve(false))
    req.on('timeout', () => { req.destroy(); resolve(false) })
    req.end()
  })
}

class DefaultLocalEngine implements LocalEngine {
  readonly name: string
  readonly dockerHost: string
  readonly socketPath: string
  readonly bridge: string
  readonly namespace: string
  engineId: string | undefined
  private readonly dir: string
  private readonly init: LocalEngineInit
  private readonly log: Logger
  private child?: ChildProcess
  private exited?: Promise<void>
  private bridgeMade = false
  private containerd?: string

  constructor (init: LocalEngineInit, components: LocalEngineComponents) {
    if (!NAME.test(init.name)) throw new EngineStartError(`engine name ${JSON.stringify(init.name)}: must be 1 to 15 lower-case letters, digits or '-' (it names a network interface)`)
    this.init = init
    this.name = init.name
    this.dir = resolve(init.dir)
    this.socketPath = join(this.dir, 'docker.sock')
    // Unix socket paths are at most 107 bytes.
    if (Buffer.byteLength(this.socketPath) > 100) throw new EngineStartError(`engine directory ${this.dir}: too long for a unix socket path; use a shorter one`)
    this.dockerHost = `unix://${this.socketPath}`
    this.bridge = init.name
    this.namespace = `neko-${init.name}`
    this.log = componentLog(components.logger, 'engine').child({ engine: init.name })
  }

  async start (): Promise<void> {
    if (this.child != null) return
    if (process.getuid?.() !== 0) throw new EngineStartError('a separate Docker engine per node needs root (dockerd and `ip link`): run as root, or use one shared engine (devnet --one-engine)')
    const dockerd = this.init.dockerd ?? findDockerd()
    if (dockerd == null) throw new EngineStartError('dockerd is not installed (scripts/setup-host.sh installs it), or use the running engine (devnet --one-engine)')
    try {
      await mkdir(join(this.dir, 'data'), { recursive: true, mode: 0o700 })
      await mkdir(join(this.dir, 'exec'), { recursive: true, mode: 0o700 })
      // Its own config file: the machine's /etc/docker/daemon.json may name a bridge, hosts or a data root that would clash with the flags.
      await writeFile(join(this.dir, 'daemon.json'), JSON.stringify({ features: { 'containerd-snapshotter': true } }) + '\n')
      const subnet = this.init.subnet ?? await freeSubnet()
      await this.ip(['link', 'add', this.bridge, 'type', 'bridge'])
      this.bridgeMade = true
      await this.ip(['addr', 'add', subnet, 'dev', this.bridge])
      await this.ip(['link', 'set', this.bridge, 'up'])

      const socket = this.init.containerdSocket ?? DEFAULT_CONTAINERD
      this.containerd = existsSync(socket) ? socket : undefined
      const args = [
        '--config-file', join(this.dir, 'daemon.json'),
        '--data-root', join(this.dir, 'data'),
        '--exec-root', join(this.dir, 'exec'),
        '-H', this.dockerHost,
        '--pidfile', join(this.dir, 'docker.pid'),
        ...(this.containerd != null ? ['--containerd', this.containerd] : []),
        '--containerd-namespace', this.namespace,
        '--containerd-plugins-namespace', `${this.namespace}-plugins`,
        // Its own bridge, never docker0 (`--bridge none` would delete the machine's docker0);
        // no firewall rules: builds reach nothing but the engine.
        '--bridge', this.bridge,
        '--iptables=false', '--ip6tables=false'
      ]
      const logFile = await open(join(this.dir, 'dockerd.log'), 'a')
      // dockerd is stopped when this process dies, even by SIGKILL.
      const [file, argv] = dyingWithParent(dockerd, args, 'SIGTERM')
      const child = spawn(file, argv, { stdio: ['ignore', logFile.fd, logFile.fd] })
      this.child = child
      this.exited = new Promise(resolve => child.once('exit', () => { void logFile.close(); resolve() }))
      let gone = false
      void this.exited.then(() => { gone = true })
      const deadline = Date.now() + (this.init.startTimeoutMs ?? 60_000)
      while (!await pings(this.socketPath)) {
        if (gone) throw new EngineStartError(`dockerd for ${this.name} exited during start: ${await this.logTail()}`)
        if (Date.now() > deadline) throw new EngineStartError(`dockerd for ${this.name} did not answer on ${this.socketPath} within ${Math.round((this.init.startTimeoutMs ?? 60_000) / 1000)} s: ${await this.logTail()}`)
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      this.engineId = (await dockerCli('docker', ['info', '--format', '{{.ID}}'], { env: this.env(), timeoutMs: 30_000 })).trim()
      this.log.info({ socket: this.socketPath, bridge: this.bridge, subnet, namespace: this.namespace, engineId: this.engineId }, 'engine started')
    } catch (err) {
      await this.stop()
      if (err instanceof EngineStartError) throw err
      throw new EngineStartError(`engine ${this.name}: ${(err as Error).message}`)
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child != null && child.exitCode == null && child.signalCode == null) {
      // Images and build cache live in the machine's containerd under this engine's namespace:
      // the engine removes its own before it goes.
      if (await pings(this.socketPath)) {
        await dockerCli('docker', ['system', 'prune', '--all', '--force'], { env: this.env(), timeoutMs: 120_000 })
          .catch((err: unknown) => { this.log.warn({ err }, 'pruning the engine before it stops failed') })
      }
      child.kill('SIGTERM')
      const stopped = await Promise.race([this.exited!.then(() => true), new Promise<boolean>(resolve => setTimeout(() => resolve(false), this.init.stopTimeoutMs ?? 30_000).unref())])
      if (!stopped) {
        this.log.warn('dockerd did not stop after SIGTERM; killing it')
        child.kill('SIGKILL')
        await this.exited
      }
    }
    this.child = undefined
    if (this.containerd != null) await this.dropNamespaces(this.containerd)
    if (this.bridgeMade) {
      await this.ip(['link', 'del', this.bridge]).then(() => { this.bridgeMade = false }, (err: unknown) => { this.log.warn({ err }, 'removing the engine bridge failed') })
    }
    await rm(this.dir, { recursive: true, force: true }).catch((err: unknown) => { this.log.warn({ err, dir: this.dir }, 'removing the engine directory failed') })
  }

  /** Empties and removes the engine's namespaces in the shared containerd (leases first: they hold content). */
  private async dropNamespaces (address: string): Promise<void> {
    const ctr = async (args: string[]): Promise<string> => await dockerCli('ctr', ['--address', address, ...args], { timeoutMs: 60_000 })
    const list = async (args: string[]): Promise<string[]> => (await ctr(args)).split('\n').map(l => l.trim()).filter(l => l !== '')
    try {
      const present = new Set(await list(['namespaces', 'ls', '-q']))
      for (const ns of [this.namespace, `${this.namespace}${HISTORY_SUFFIX}`, `${this.namespace}-plugins`].filter(n => present.has(n))) {
        for (const what of ['leases', 'images', 'content'] as const) {
          const ids = await list(['-n', ns, what, 'ls', '-q'])
          // Batches keep each command line short.
          for (let i = 0; i < ids.length; i += 100) await ctr(['-n', ns, what, 'rm', ...ids.slice(i, i + 100)])
        }
        await ctr(['namespaces', 'rm', ns])
      }
    } catch (err) {
      this.log.warn({ err, namespace: this.namespace }, 'removing the engine\'s containerd namespaces failed')
    }
  }

  private env (): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_HOST: this.dockerHost }
  }

  private async ip (args: string[]): Promise<void> {
    await dockerCli('ip', args, { timeoutMs: 10_000 })
  }

  private async logTail (): Promise<string> {
    const text = await readFile(join(this.dir, 'dockerd.log'), 'utf8').catch(() => '')
    return text.trim().split('\n').slice(-5).join(' | ') || '(no log)'
  }
}

export function createLocalEngine (components: LocalEngineComponents, init: LocalEngineInit): LocalEngine {
  return new DefaultLocalEngine(init, components)
}
