import { execFile, execFileSync } from 'node:child_process'

/**
 * Runs a command in a new network namespace whose only interface is loopback, with
 * multicast routed to it: tests of multicast (mDNS) then reach nothing but this machine.
 */
const SETUP = 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && exec "$@"'

/**
 * Whether this process may make network namespaces (root, `unshare`, `ip`). Under
 * `NEKO_REQUIRE_NETNS=1` (set by CI) a missing one throws, so the tests fail rather than
 * skip; otherwise they skip with one line on stderr.
 */
export function netnsAvailable (suite: string): boolean {
  let ok = false
  try {
    execFileSync('unshare', ['--net', '--', 'sh', '-c', SETUP, 'sh', 'true'], { stdio: 'ignore', timeout: 10_000 })
    ok = true
  } catch {
    // not root, or no unshare/ip: reported below
  }
  if (!ok) {
    if (process.env.NEKO_REQUIRE_NETNS === '1') throw new Error(`${suite}: NEKO_REQUIRE_NETNS=1 but no network namespace can be made (needs root, unshare and ip)`)
    process.stderr.write(`[skip] ${suite}: cannot make a network namespace (needs root, unshare and ip)\n`)
  }
  return ok
}

/** Run `argv` inside a fresh loopback-only network namespace; resolves with its stdout. */
export async function runInNetns (argv: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs: number, cwd?: string }): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('unshare', ['--net', '--', 'sh', '-c', SETUP, 'sh', ...argv], { env: opts.env, cwd: opts.cwd, timeout: opts.timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err != null) reject(new Error(`${argv.join(' ')} in a network namespace failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/**
 * Whether this process can build routed networks of namespaces (root, `unshare`, `ip`,
 * `iptables` with NAT, and `miniupnpd` for a router that maps ports): under `NEKO_REQUIRE_NETNS=1` a missing part throws, otherwise the
 * suite skips with one line on stderr.
 */
export function natNetAvailable (suite: string): boolean {
  let ok = false
  try {
    execFileSync('unshare', ['--net', '--', 'sh', '-ec', 'command -v miniupnpd && command -v iptables-legacy && ip link add t0 type veth peer name t1 && iptables -t nat -A POSTROUTING -o t0 -j MASQUERADE --random-fully'], { stdio: 'ignore', timeout: 10_000 })
    ok = true
  } catch {
    // reported below
  }
  if (!ok) {
    if (process.env.NEKO_REQUIRE_NETNS === '1') throw new Error(`${suite}: NEKO_REQUIRE_NETNS=1 but no NATed network of namespaces can be made (needs root, unshare, ip, iptables, iptables-legacy and miniupnpd)`)
    process.stderr.write(`[skip] ${suite}: cannot make NATed network namespaces (needs root, unshare, ip, iptables, iptables-legacy and miniupnpd)\n`)
  }
  return ok
}

/**
 * Runs `argv` in a fresh network and mount namespace: the namespaces it makes (`ip netns`,
 * whose names live on a tmpfs it mounts) vanish with it, whatever way it ends. Resolves with
 * its stdout and stderr.
 */
export async function runInNetNamespaces (argv: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs: number, cwd?: string }): Promise<{ stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    execFile('unshare', ['--net', '--mount', '--', ...argv], { env: opts.env, cwd: opts.cwd, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err != null) reject(new Error(`${argv.join(' ')} in network namespaces failed: ${err.message}\n${stdout.slice(-2000)}\n${stderr.slice(-8000)}`))
      else resolve({ stdout, stderr })
    })
  })
}
