import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { resolve } from 'node:path'

const ROOT = resolve(fileURLToPath(import.meta.url), '../../..')

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the real CLI (src/cli/main.ts through tsx) as a separate process. */
export async function runCli (args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string } = {}): Promise<CliResult> {
  return await new Promise((done, fail) => {
    // tsx by its own location: a `cwd` outside the project has no node_modules to find it in.
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), resolve(ROOT, 'src/cli/main.ts'), ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, NEKO_LOG_LEVEL: 'silent', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
    child.on('error', fail)
    child.on('close', code => done({ code, stdout, stderr }))
  })
}
