import { execFile } from 'node:child_process'

/** Runs the docker CLI (buildx lives there, not in the Engine API) and returns stdout. */
export async function dockerCli (cli: string, args: string[], opts: { signal?: AbortSignal, timeoutMs?: number, env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(cli, args, { signal: opts.signal, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 8 * 1024 * 1024, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      if (err != null) {
        const detail = String(stderr).trim() !== '' ? String(stderr).trim() : err.message
        reject(new Error(`${cli} ${args.join(' ')}: ${detail}`))
      } else {
        resolve(String(stdout))
      }
    })
  })
}
