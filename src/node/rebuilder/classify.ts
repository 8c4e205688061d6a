import type { Failure } from '../../protocol/types.js'

/**
 * Log text that means the machine, not the release, is at fault: the engine, its runtime
 * (containerd, runc), container networking, disk or memory. Checked before the failing step,
 * since these surface as a failing `RUN` too.
 */
const INFRASTRUCTURE: Array<[RegExp, string]> = [
  [/no space left on device|\bENOSPC\b|disk quota exceeded/i, 'the builder ran out of disk space'],
  [/Cannot connect to the Docker daemon|error during connect|dial unix [^:]+: connect|connection refused|docker\.sock: connect|EOF while reading from the Docker daemon/i, 'the Docker engine is unreachable'],
  // The engine restarted or died mid-build: BuildKit's gRPC stream ends.
  [/code = Unavailable|error reading from server: EOF|transport is closing|the daemon is shutting down|failed to receive status: rpc error/i, 'the Docker engine went away during the build (restarted or stopped)'],
  [/ERROR: no builder|failed to find driver|no valid drivers found|failed to initialize builder|ERROR: failed to get builder/i, 'the buildx builder is missing or broken'],
  [/ERROR: failed to solve: .*(failed to do request|i\/o timeout|TLS handshake timeout|temporary failure in name resolution|no such host)/i, 'the builder could not reach a registry'],
  // A step's container could not be wired up: the engine's bridge, veth pair or network sandbox.
  [/failed to create endpoint|failed to set up container networking|adding interface \S+ to bridge|failed to (?:create|add|set up) (?:the )?(?:veth|bridge|network sandbox|netns|network namespace)|failed to create network/i, 'the engine could not set up a build step\'s network'],
  // The runtime could not start a step (not a missing program: that is the release's).
  [/failed to (?:create|start) shim|shim (?:exited|disconnected)|runc did not terminate|containerd(?:-shim)?[^\n]*(?:not running|ttrpc: closed)|OCI runtime (?:create|start) failed(?![^\n]*(?:executable file not found|no such file or directory))/i, 'the container runtime (containerd, runc) failed'],
  [/cannot allocate memory|signal: killed.*oom|out of memory|oom[-_ ]?kill/i, 'the builder ran out of memory'],
  // SIGKILL of a step: the kernel's out-of-memory killer, as a release does not kill itself so.
  [/did not complete successfully: exit code: 137\b/, 'a build step was killed (SIGKILL, most often the out-of-memory killer)'],
  [/exec format error/i, 'the builder cannot run this platform (binfmt emulation missing)']
]

const STEP_HEADER = /^#(\d+) \[([^\]]+)\] (.*)$/
const STEP_ERROR = /^#(\d+) ERROR: (.*)$/

/** The last lines of the log, for a failure claim: enough to see why, bounded for the wire. */
export function logExcerpt (log: string, lines = 20, maxChars = 2000): string {
  const tail = log.trimEnd().split('\n').slice(-lines).join('\n')
  return tail.length > maxChars ? tail.slice(-maxChars) : tail
}

/**
 * Classifies a failed `docker buildx build` from its plain-progress log: infrastructure
 * errors first (they can also surface as a failing step), then the failing step.
 */
export function classifyBuildLog (log: string, exitCode: number | null, knownSteps?: Map<number, string>): Failure {
  const excerpt = logExcerpt(log)
  for (const [pattern, message] of INFRASTRUCTURE) {
    const m = pattern.exec(log)
    if (m != null) return { class: 'infrastructure-error', message: `${message}: ${lineOf(log, m.index)}`, logExcerpt: excerpt }
  }
  const headers = new Map<string, { stage: string, step: string }>()
  // Headers from earlier than the kept log text.
  for (const [n, line] of knownSteps ?? []) {
    const h = /^\[([^\]]+)\] (.*)$/.exec(line)
    if (h?.[1] != null && h[2] != null) headers.set(String(n), { stage: h[1], step: h[2] })
  }
  let failed: { stage: string, step: string, error: string } | undefined
  for (const line of log.split('\n')) {
    const h = STEP_HEADER.exec(line)
    if (h?.[1] != null && h[2] != null && h[3] != null) { headers.set(h[1], { stage: h[2], step: h[3] }); continue }
    const e = STEP_ERROR.exec(line)
    if (e?.[1] != null && e[2] != null && failed == null) {
      const header = headers.get(e[1])
      if (header != null) failed = { ...header, error: e[2] }
    }
  }
  const solve = /^ERROR: (?:failed to solve: )?(.*)$/m.exec(log)?.[1]
  if (failed != null) {
    return { class: 'build-failed', message: `[${failed.stage}] ${failed.step}: ${failed.error}`, step: failed.step, logExcerpt: excerpt }
  }
  return { class: 'build-failed', message: solve ?? `docker buildx build exited with ${exitCode ?? 'a signal'}`, logExcerpt: excerpt }
}

/** The line holding `index`, from a little before it: a long RUN command must not crowd out the error. */
function lineOf (text: string, index: number): string {
  const start = Math.max(text.lastIndexOf('\n', index) + 1, index - 120)
  const end = text.indexOf('\n', index)
  return text.slice(start, end === -1 ? undefined : end).trim().slice(0, 500)
}
