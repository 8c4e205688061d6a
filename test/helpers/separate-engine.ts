import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { openSync, closeSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A Docker engine of its own, beside the machine's: its own data and exec roots, socket,
 * pidfile, containerd (managed by it) and bridge. Tests break it (delete its bridge, stop
 * it) without touching the engine every other test shares, nor its docker0.
 */
export interface SeparateEngine {
  /** For DOCKER_HOST: `unix:///…/docker.sock`. */
  host: string
  socketPath: string
  /** The Linux bridge its containers (and BuildKit's RUN steps) attach to. */
  bridge: string
  dir: string
  /** The engine's own log, for a failing test's message. */
  log: () => Promise<string>
  /** Deletes the bridge under the running engine: every RUN step then fails to get a network. */
  removeBridge: () => Promise<void>
  /** Makes the bridge again, with its address: the host is fixed. */
  restoreBridge: () => Promise<void>
  /** Stops the engine and its containerd, deletes the bridge and every file. */
  stop: () => Promise<void>
}

/**
 * Whether a separate engine can run here (root, dockerd, unshare, ip). Under
 * `NEKO_REQUIRE_ENGINE=1` (set by CI) a missing part throws, so the tests fail rather than
 * skip; otherwise they skip with one line on stderr.
 */
export function separateEngineAvailable (suite: string): boolean {
  let ok = process.getuid?.() === 0
  try {
    for (const cmd of ['dockerd', 'unshare', 'ip']) execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', timeout: 10_000 })
  } catch {
    ok = false
  }
  if (!ok) {
    if (process.env.NEKO_REQUIRE_ENGINE === '1') throw new Error(`${suite}: NEKO_REQUIRE_ENGINE=1 but no separate Docker engine can run (needs root, dockerd, unshare and ip)`)
    process.stderr.write(`[skip] ${suite}: a separate Docker engine needs root, dockerd, unshare and ip\n`)
  }
  return ok
}

async function ip (...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 })
}

/** A /24 no interface of this machine uses yet. */
async function freeSubnet (): Promise<string> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show'], { timeout: 10_000 })
  for (let i = 0; i < 64; i++) {
    const prefix = `10.254.${randomBytes(1)[0] ?? 0}`
    if (!stdout.includes(` ${prefix}.`)) return prefix
  }
  throw new Error('no free 10.254.x.0/24 subnet for a separate engine')
}

export async function startSeparateEngine (opts: { readyTimeoutMs?: number } = {}): Promise<SeparateEngine> {
  const id = randomBytes(3).toString('hex')
  // Bridge names are at most 15 bytes; unix socket paths at most 107.
  const bridge = `nkbr${id}`
  const dir = await mkdtemp(join(tmpdir(), 'neko-engine-'))
  const socketPath = join(dir, 'docker.sock')
  const pidfile = join(dir, 'docker.pid')
  const config = join(dir, 'daemon.json')
  const prefix = await freeSubnet()
  const makeBridge = async (): Promise<void> => {
    await ip('link', 'add', bridge, 'type', 'bridge')
    await ip('addr', 'add', `${prefix}.1/24`, 'dev', bridge)
    await ip('link', 'set', bridge, 'up')
  }
  // The containerd image store exports OCI as rebuilds need; nothing from /etc/docker/daemon.json.
  await writeFile(config, JSON.stringify({ features: { 'containerd-snapshotter': true } }))
  await makeBridge()
  const logFile = join(dir, 'dockerd.log')
  const out = openSync(logFile, 'a')
  // A private mount namespace with /run/containerd hidden: dockerd then starts a containerd of
  // its own under its exec root (not the machine's), and every mount it makes ends with it.
  let child: ChildProcess
  try {
    child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs tmpfs /run/containerd && exec dockerd "$@"', 'sh',
      '--config-file', config,
      '--data-root', join(dir, 'root'),
      '--exec-root', join(dir, 'exec'),
      '-H', `unix://${socketPath}`,
      '--pidfile', pidfile,
      '--containerd-namespace', `neko-${id}`,
      '--containerd-plugins-namespace', `neko-${id}-plugins`,
      '--bridge', bridge,
      // Its rules would land in the machine's shared tables.
      '--iptables=false', '--ip6tables=false', '--ip-masq=false'
    ], { stdio: ['ignore', out, out] })
  } finally {
    closeSync(out)
  }
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const log = async (): Promise<string> => await readFile(logFile, 'utf8').catch(() => '')

  const stop = async (): Promise<void> => {
    if (child.exitCode == null && child.signalCode == null) {
      child.kill('SIGTERM')
      const killed = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(killed)
    }
    await ip('link', 'del', bridge).catch(() => {})
    await rm(dir, { recursive: true, force: true, maxRetries: 3 })
  }

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000)
  for (;;) {
    try {
      await run('docker', ['-H', `unix://${socketPath}`, 'info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 })
      break
    } catch {
      if (child.exitCode != null || Date.now() > deadline) {
        const text = await log()
        await stop()
        throw new Error(`the separate engine did not start:\n${text.slice(-2000)}`)
      }
      await new Promise(resolve => setTimeout(resolve, 250))
    }
  }
  return {
    host: `unix://${socketPath}`,
    socketPath,
    bridge,
    dir,
    log,
    removeBridge: async () => { await ip('link', 'del', bridge) },
    restoreBridge: makeBridge,
    stop
  }
}
