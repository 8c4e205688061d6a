import { createReadStream } from 'node:fs'
import type Dockerode from 'dockerode'
import type { BuildLog } from './build-log.js'
import type { EngineInfo } from './engine.js'
import { runAttached } from './prepare.js'
import type { SmokeTest } from './recipe.js'

/** A smoke test's run in a rebuilt image: PASSED when the command exits 0. */
export interface SmokeOutcome {
  result: 'PASSED' | 'FAILED'
  command: string[]
  gpu: boolean
  /** Absent when the command did not exit by itself (its time ran out). */
  exitCode?: number
  startedOn: string
  finishedOn: string
}

const DEFAULT_TIMEOUT_S = 300

/** Why this engine cannot run the test; undefined when it can. A GPU test needs an NVIDIA runtime or CDI devices. */
export function cannotRunSmoke (test: SmokeTest, engine: Pick<EngineInfo, 'nvidia'>): string | undefined {
  return test.gpu === true && !engine.nvidia ? 'the smoke test needs an NVIDIA GPU (no NVIDIA runtime or CDI device on this engine)' : undefined
}

/** How the GPU is handed to the container: the NVIDIA runtime's device request, else the CDI devices. */
function gpuRequest (engine: Pick<EngineInfo, 'runtimes' | 'cdiDevices'>): Array<Record<string, unknown>> {
  if (engine.runtimes.includes('nvidia')) return [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }]
  return [{ Driver: 'cdi', DeviceIDs: engine.cdiDevices.filter(d => d.startsWith('nvidia.com/gpu')) }]
}

/** Loads an OCI tarball into the engine; the image id it reports. */
async function loadImage (docker: Dockerode, tarPath: string): Promise<string> {
  const stream = await docker.loadImage(createReadStream(tarPath), { quiet: true })
  const lines: string[] = []
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null) => { if (err != null) reject(err); else resolve() }, (event: { stream?: string }) => { if (event.stream != null) lines.push(event.stream) })
  })
  const text = lines.join('')
  const id = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(text)?.[1] ?? /Loaded image: (\S+)/.exec(text)?.[1]
  if (id == null) throw new Error(`the engine loaded the image but did not say which: ${text.slice(0, 200)}`)
  return id
}

/**
 * Runs the smoke test in the image of `tarPath`: loads it, runs the command in a container
 * with no network (and the GPU when the test names one), removes both. The test's output
 * goes to the build log. An engine problem throws; a command that fails is a FAILED outcome.
 */
export async function runSmokeTest (docker: Dockerode, engine: Pick<EngineInfo, 'runtimes' | 'cdiDevices'>, tarPath: string, test: SmokeTest, where: { log: BuildLog, signal: AbortSignal }): Promise<SmokeOutcome> {
  const gpu = test.gpu === true
  where.log.write(`# smoke test${gpu ? ' (GPU)' : ''}: ${test.command.join(' ')}\n`)
  const image = await loadImage(docker, tarPath)
  const startedOn = new Date().toISOString()
  const timeout = AbortSignal.timeout((test.timeoutSeconds ?? DEFAULT_TIMEOUT_S) * 1000)
  const container = await docker.createContainer({
    Image: image,
    Cmd: test.command,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    HostConfig: { NetworkMode: 'none', ...(gpu ? { DeviceRequests: gpuRequest(engine) } : {}) }
  })
  try {
    const run = await runAttached(docker, container, { log: where.log, signal: AbortSignal.any([where.signal, timeout]) })
    if (where.signal.aborted) throw where.signal.reason
    const exited = !timeout.aborted
    const passed = exited && run.exitCode === 0
    where.log.write(`# smoke test ${passed ? 'passed' : exited ? `failed: exit ${run.exitCode}` : `failed: no exit within ${test.timeoutSeconds ?? DEFAULT_TIMEOUT_S} s`}\n`)
    return { result: passed ? 'PASSED' : 'FAILED', command: test.command, gpu, ...(exited ? { exitCode: run.exitCode } : {}), startedOn, finishedOn: new Date().toISOString() }
  } finally {
    await container.remove({ force: true }).catch(() => {})
    await docker.getImage(image).remove({ force: true }).catch(() => {})
  }
}
