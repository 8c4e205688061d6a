import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { BuildLog } from './build-log.js'

/** Where a rebuild is, for progress display. */
export interface BuildProgress {
  phase: 'source' | 'prepare' | 'build' | 'read'
  /** Variant being built (differs from the requested one while its `from` base is built first). */
  variant: string
  /** BuildKit vertex number (`#7`) during `build`. */
  stepIndex?: number
  /** `[2/5] RUN make`, or the prepare command. */
  step?: string
  /** Since the rebuild started. */
  elapsedMs: number
  /** The rebuild's log file, growing as it runs. */
  logPath?: string
}

export interface BuildxRun {
  cli: string
  args: string[]
  cwd: string
  env: NodeJS.ProcessEnv
  /** Appended to, never truncated: one log per rebuild holds every step. */
  log: BuildLog
  signal: AbortSignal
  onStep?: (index: number, step: string) => void
}

export interface BuildxResult {
  exitCode: number | null
  /** Set when the signal ended the run. */
  aborted: boolean
  /** The process could not be started at all. */
  spawnError?: Error
}

/**
 * util-linux's setpriv, to have the kernel kill the docker CLI when this process dies, even by
 * SIGKILL (PR_SET_PDEATHSIG survives the exec); the CLI's buildx plugin cancels the build when
 * the CLI goes. Without it a node killed with -9 would leave its build running.
 */
const SETPRIV = '/usr/bin/setpriv'
const HAS_SETPRIV = existsSync(SETPRIV)

/** `file args` wrapped so that the kernel sends `signal` to it when this process dies (where setpriv exists). */
export function dyingWithParent (file: string, args: string[], signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): [string, string[]] {
  return HAS_SETPRIV ? [SETPRIV, ['--pdeathsig', signal, '--', file, ...args]] : [file, args]
}

/** How long buildx gets to cancel the solve after SIGINT before it is killed. */
const KILL_GRACE_MS = 5_000

/**
 * Runs `docker buildx build` to completion, abort or timeout. On abort it sends SIGINT (buildx
 * cancels the solve when its client goes), then SIGKILL after a grace period.
 */
export async function runBuildx (run: BuildxRun): Promise<BuildxResult> {
  return await new Promise(resolve => {
    if (run.signal.aborted) { resolve({ exitCode: null, aborted: true }); return }
    const [file, args] = dyingWithParent(run.cli, run.args)
    const child = spawn(file, args, { cwd: run.cwd, env: run.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let head = ''
    let killTimer: NodeJS.Timeout | undefined
    const onAbort = (): void => {
      child.kill('SIGINT')
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS)
      killTimer.unref()
    }
    run.signal.addEventListener('abort', onAbort, { once: true })
    let pending = ''
    const onData = (chunk: Buffer): void => {
      if (head.length < 200) head += chunk.toString('utf8')
      run.log.write(chunk)
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) {
        const s = run.log.step(line)
        if (s != null) run.onStep?.(s.index, s.step)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    let spawnError: Error | undefined
    child.on('error', err => { spawnError = err })
    child.on('close', code => {
      run.signal.removeEventListener('abort', onAbort)
      if (killTimer != null) clearTimeout(killTimer)
      // setpriv reports a CLI it cannot start (exit 127) where spawn would have thrown.
      if (spawnError == null && code === 127 && head.startsWith('setpriv: ')) spawnError = new Error(head.split('\n')[0]?.slice('setpriv: '.length))
      resolve({ exitCode: code, aborted: run.signal.aborted, ...(spawnError != null ? { spawnError } : {}) })
    })
  })
}
