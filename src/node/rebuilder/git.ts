import { execFile } from 'node:child_process'

export interface GitOptions {
  cwd?: string
  signal?: AbortSignal
  /** Per command; fetches of big repositories take a while. */
  timeoutMs?: number
}

export class GitCommandError extends Error {
  override name = 'GitCommandError'
  constructor (readonly args: string[], readonly stderr: string, readonly exitCode: number | null) {
    super(`git ${args.join(' ')} failed${exitCode != null ? ` (exit ${exitCode})` : ''}: ${stderr.trim().split('\n').slice(-3).join(' ')}`)
  }
}

/** Runs git without prompts, pagers or user config, so results do not depend on the host. */
export async function git (args: string[], opts: GitOptions = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile('git', args, {
      cwd: opts.cwd,
      signal: opts.signal,
      timeout: opts.timeoutMs ?? 10 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        GIT_TERMINAL_PROMPT: '0',
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_ASKPASS: '/bin/false',
        LC_ALL: 'C'
      }
    }, (err, stdout, stderr) => {
      if (err != null) {
        if (err.name === 'AbortError') reject(err)
        else reject(new GitCommandError(args, String(stderr), typeof err.code === 'number' ? err.code : null))
      } else {
        resolve(String(stdout))
      }
    })
  })
}
