import type Dockerode from 'dockerode'
import type { BuildEnvironment } from '../../protocol/types.js'
import { hostArch, ociArch, toolInfo } from '../../tool.js'
import { dockerCli } from './cli.js'
import { EngineNotReadyError } from './errors.js'
import { dockerSocketDenied, isDockerSocket } from '../os-errors.js'
import type { PlatformCapabilities } from './recipe.js'

export interface EngineInfo {
  /** `docker info` ID: stable for an engine's lifetime (it lives in its data root), not a secret. */
  engineId?: string
  engineVersion: string
  apiVersion: string
  /** OCI architecture of the engine host (`amd64`, `arm64`). */
  arch: string
  kernel: string
  os: string
  runtimes: string[]
  nvidia: boolean
  cdiDevices: string[]
  buildx: string
  builder: { name: string, driver: string, buildkit: string, platforms: string[], worker?: string }
  /** Whether `--output type=oci` works with this builder. */
  ociExport: boolean
  /** `containerd-snapshotter` when the engine uses the containerd image store. */
  storage: string
}

export interface Capabilities extends PlatformCapabilities {
  environment: Omit<BuildEnvironment, 'emulated'>
}

const WORKER_LABEL = 'org.mobyproject.buildkit.worker.'

/**
 * Reads `docker buildx inspect` text: name, driver, BuildKit version, platforms of the first
 * node, and its worker: `builder/node`, then the worker's containerd UUID (the docker driver)
 * or its hostname (a docker-container builder's container) when BuildKit reports one.
 */
export function parseBuildxInspect (text: string): { name: string, driver: string, buildkit: string, platforms: string[], worker?: string } {
  const field = (label: string): string => text.match(new RegExp(`^${label}:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? ''
  const label = (name: string): string | undefined => text.match(new RegExp(`^\\s*${(WORKER_LABEL + name).replace(/\./g, '\\.')}:\\s*(\\S+)\\s*$`, 'm'))?.[1]
  const platforms = field('Platforms').split(',').map(p => p.trim().replace(/\*$/, '')).filter(p => p !== '')
  const name = field('Name')
  // `Name:` appears for the builder and again for its first node.
  const node = [...text.matchAll(/^Name:\s*(.*)$/gm)][1]?.[1]?.trim() ?? name
  const unique = label('containerd.uuid') ?? label('hostname')
  const out: ReturnType<typeof parseBuildxInspect> = { name, driver: field('Driver'), buildkit: field('BuildKit version') || field('BuildKit'), platforms }
  if (name !== '') out.worker = `${name}/${node}${unique != null ? ` ${unique}` : ''}`
  return out
}

/** `github.com/docker/buildx v0.13.1 abc` → `v0.13.1` (Debian prints `0.13.1+ds1 0.13.1+ds1-3`). */
export function parseBuildxVersion (text: string): string {
  const parts = text.trim().split(/\s+/)
  return parts[1] ?? parts[0] ?? ''
}

/**
 * Asks the engine (dockerode) and the CLI (buildx) what they are, and refuses with an
 * EngineNotReadyError that says what to change when a reproducible OCI export is impossible.
 */
export async function checkEngine (docker: Dockerode, cli: string, signal?: AbortSignal, env?: NodeJS.ProcessEnv): Promise<EngineInfo> {
  let version: Dockerode.DockerVersion
  let info: Record<string, unknown>
  try {
    version = await docker.version()
    info = await docker.info() as Record<string, unknown>
  } catch (err) {
    // A running engine whose socket this user may not open is a group problem, not a dead dockerd.
    const e = err as NodeJS.ErrnoException & { address?: string }
    if ((e.code === 'EACCES' || e.code === 'EPERM') && isDockerSocket(e.address ?? e.path)) throw new EngineNotReadyError(dockerSocketDenied(e.address ?? e.path ?? ''))
    throw new EngineNotReadyError(`the Docker engine does not answer (${(err as Error).message}); start dockerd, or point DOCKER_HOST at a running engine`)
  }
  let buildx: string
  try {
    buildx = parseBuildxVersion(await dockerCli(cli, ['buildx', 'version'], { signal, timeoutMs: 30_000, env }))
  } catch (err) {
    throw new EngineNotReadyError(`docker buildx is not available (${(err as Error).message}); install the buildx plugin (>= 0.13)`)
  }
  let builder: EngineInfo['builder']
  try {
    builder = parseBuildxInspect(await dockerCli(cli, ['buildx', 'inspect', '--bootstrap'], { signal, timeoutMs: 120_000, env }))
  } catch (err) {
    throw new EngineNotReadyError(`the current buildx builder does not start (${(err as Error).message}); select a working one with \`docker buildx use default\` or \`docker buildx create --driver docker-container --use\``)
  }
  const driverStatus = (info.DriverStatus as Array<[string, string]> | null) ?? []
  const containerdStore = driverStatus.some(([k, v]) => k === 'driver-type' && v === 'io.containerd.snapshotter.v1')
  const ociExport = builder.driver === 'docker-container' || builder.driver === 'kubernetes' || builder.driver === 'remote' || (builder.driver === 'docker' && containerdStore)
  if (!ociExport) {
    throw new EngineNotReadyError(`builder ${builder.name} (driver ${builder.driver}) cannot export OCI images: add {"features":{"containerd-snapshotter":true}} to /etc/docker/daemon.json and restart dockerd, or run \`docker buildx create --driver docker-container --use\``)
  }
  const runtimes = Object.keys((info.Runtimes as Record<string, unknown> | undefined) ?? {})
  const cdiDevices = ((info.CDISpecDirs != null ? (info.DiscoveredDevices as Array<{ Source: string, ID: string }> | undefined) : undefined) ?? [])
    .map(d => d.ID)
  const arch = ociArch(String(info.Architecture ?? version.Arch)) ?? String(version.Arch)
  const engineId = typeof info.ID === 'string' && info.ID !== '' ? info.ID : undefined
  return {
    ...(engineId != null ? { engineId } : {}),
    engineVersion: version.Version,
    apiVersion: version.ApiVersion,
    arch,
    kernel: String(info.KernelVersion ?? version.KernelVersion ?? ''),
    os: String(info.OSType ?? version.Os),
    runtimes,
    nvidia: runtimes.includes('nvidia') || cdiDevices.some(d => d.startsWith('nvidia.com/gpu')),
    cdiDevices,
    buildx,
    builder,
    ociExport,
    storage: containerdStore ? 'containerd-snapshotter' : String(info.Driver ?? '')
  }
}

/** The environment a claim records, without `emulated` (that depends on the target platform). */
export function environmentOf (engine: EngineInfo): Omit<BuildEnvironment, 'emulated'> {
  return {
    engine: { name: 'docker', version: engine.engineVersion, apiVersion: engine.apiVersion, ...(engine.engineId != null ? { id: engine.engineId } : {}) },
    buildx: engine.buildx,
    buildkit: engine.builder.buildkit,
    ...(engine.builder.worker != null ? { buildkitWorker: engine.builder.worker } : {}),
    kernel: engine.kernel,
    arch: engine.arch,
    tool: toolInfo()
  }
}

/** Native platform from the engine's arch; every other platform the builder lists runs under emulation. */
export function capabilitiesOf (engine: EngineInfo): Capabilities {
  const native = `linux/${engine.arch}`
  const seen = new Set<string>()
  const platforms: Capabilities['platforms'] = [{ platform: native, emulated: false }]
  seen.add(native)
  for (const p of engine.builder.platforms) {
    // `linux/amd64/v2` is the same platform for our purposes; `linux/arm/v7` is not.
    const base = /^linux\/amd64\/v\d$/.test(p) ? 'linux/amd64' : p
    if (seen.has(base)) continue
    seen.add(base)
    platforms.push({ platform: base, emulated: !(base === native) })
  }
  return { platforms, nvidia: engine.nvidia, environment: environmentOf(engine) }
}

/** Recorded in a claim when the engine could not be asked (an infrastructure failure). */
export function unknownEnvironment (): Omit<BuildEnvironment, 'emulated'> {
  return {
    engine: { name: 'docker', version: 'unknown' },
    buildx: 'unknown',
    buildkit: 'unknown',
    kernel: 'unknown',
    arch: hostArch(),
    tool: toolInfo()
  }
}
