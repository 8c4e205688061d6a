import { createWriteStream } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { finished } from 'node:stream/promises'
import { PassThrough, type Writable } from 'node:stream'
import type Dockerode from 'dockerode'
import type { BuildLog } from './build-log.js'
import type { PrepareStep } from './recipe.js'
import { resolvesInside } from './paths.js'
import { PrepareOutputError } from './errors.js'

export interface PrepareResult {
  exitCode: number
  aborted: boolean
}

async function ensureImage (docker: Dockerode, image: string, log: BuildLog): Promise<void> {
  try {
    await docker.getImage(image).inspect()
    return
  } catch {
    // not present: pull it below
  }
  log.write(`pulling ${image}\n`)
  const stream = await docker.pull(image)
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, err => { if (err != null) reject(err); else resolve() })
  })
}

/**
 * Runs one prepare step in a container: image pinned by digest, the checkout bind-mounted at
 * /src (the working directory), as the calling user so the files it writes can be removed.
 * Its stdout goes to `step.stdout` in the checkout when set, else to the log; stderr to the log.
 * The container is removed afterwards, whatever happened.
 */
export async function runPrepareStep (docker: Dockerode, step: PrepareStep, where: { checkoutDir: string, log: BuildLog, signal: AbortSignal }): Promise<PrepareResult> {
  const { checkoutDir, log, signal } = where
  await ensureImage(docker, step.image, log)
  const env = { HOME: '/tmp', ...step.env }
  const user = process.getuid != null && process.getgid != null ? `${process.getuid()}:${process.getgid()}` : undefined
  const container = await docker.createContainer({
    Image: step.image,
    Cmd: step.command,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    WorkingDir: '/src',
    ...(user != null ? { User: user } : {}),
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    HostConfig: { Binds: [`${checkoutDir}:/src`] }
  })
  try {
    let stdout: Writable | undefined
    if (step.stdout != null) {
      const target = join(checkoutDir, step.stdout)
      // The file itself is replaced below; its directory must not lead out of the checkout.
      if (!await resolvesInside(checkoutDir, dirname(step.stdout))) throw new PrepareOutputError(`prepare output ${step.stdout} resolves outside the checkout (a symlink in the repository)`)
      await mkdir(dirname(target), { recursive: true })
      // Replace, never write through, whatever the commit has at that path.
      await rm(target, { force: true, recursive: true })
      stdout = createWriteStream(target, { flags: 'wx' })
    }
    return await runAttached(docker, container, { log, signal, ...(stdout != null ? { stdout } : {}) })
  } finally {
    await container.remove({ force: true }).catch(() => {})
  }
}

/**
 * Starts a created container and waits for it: its stdout to `stdout` (else the log), stderr
 * to the log; killed on abort. The caller removes it.
 */
export async function runAttached (docker: Dockerode, container: Dockerode.Container, where: { log: BuildLog, signal: AbortSignal, stdout?: Writable }): Promise<PrepareResult> {
  const { log, signal } = where
  const logSink = new PassThrough()
  logSink.on('data', (chunk: Buffer) => log.write(chunk))
  const out = where.stdout ?? logSink
  const stream = await container.attach({ stream: true, stdout: true, stderr: true })
  docker.modem.demuxStream(stream, out, logSink)
  const ended = new Promise<void>(resolve => { stream.on('end', resolve); stream.on('close', resolve) })
  await container.start()
  const onAbort = (): void => { container.kill().catch(() => {}) }
  signal.addEventListener('abort', onAbort, { once: true })
  if (signal.aborted) onAbort()
  let status: { StatusCode: number }
  try {
    status = await container.wait() as { StatusCode: number }
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
  await ended
  if (out !== logSink) { out.end(); await finished(out) }
  return { exitCode: status.StatusCode, aborted: signal.aborted }
}
