import { spawn } from 'node:child_process'

/** `docker ARGS` as a user would type it, with SOURCE_DATE_EPOCH set: the baseline the benchmarks compare against. */
export async function bare (args: string[], cwd: string, epoch: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('docker', args, { cwd, env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) }, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (c: Buffer) => { err = (err + c.toString()).slice(-4000) })
    child.on('close', code => code === 0 ? resolve() : reject(new Error(`bare build failed: ${err}`)))
  })
}
