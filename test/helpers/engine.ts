import { execFileSync } from 'node:child_process'

/**
 * Whether a Docker engine with buildx answers. Under `NEKO_REQUIRE_ENGINE=1` (set by CI)
 * a missing engine throws, so engine tests fail rather than skip; otherwise they skip
 * with one line on stderr.
 */
export function engineAvailable (suite: string): boolean {
  let ok = false
  try {
    execFileSync('docker', ['buildx', 'version'], { stdio: 'ignore', timeout: 10_000 })
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 10_000 })
    ok = true
  } catch {
    // no engine: reported below
  }
  if (!ok) {
    if (process.env.NEKO_REQUIRE_ENGINE === '1') {
      throw new Error(`${suite}: NEKO_REQUIRE_ENGINE=1 but no Docker engine with buildx answers`)
    }
    process.stderr.write(`[skip] ${suite}: no Docker engine with buildx; run scripts/setup-host.sh to test against a real one\n`)
  }
  return ok
}

/**
 * Whether a Docker engine of its own can be started here (src/node/engines: a dockerd per
 * node needs root and an installed engine). CI runs as root; under `NEKO_REQUIRE_ENGINE=1`
 * a missing one throws instead of skipping.
 */
export function ownEnginesAvailable (suite: string): boolean {
  if (!engineAvailable(suite)) return false
  if (process.getuid?.() === 0) return true
  if (process.env.NEKO_REQUIRE_ENGINE === '1') throw new Error(`${suite}: NEKO_REQUIRE_ENGINE=1 but not root, and a dockerd of its own needs root`)
  process.stderr.write(`[skip] ${suite}: not root; a dockerd of its own needs root\n`)
  return false
}

/**
 * Whether the Docker engine can hand an NVIDIA GPU to a container (an NVIDIA runtime, or CDI
 * devices named `nvidia.com/gpu…`). Under `NEKO_REQUIRE_GPU=1` (set where a GPU runner runs
 * the suite) a missing one throws; otherwise the suite skips with one line.
 */
export function gpuEngineAvailable (suite: string): boolean {
  if (!engineAvailable(suite)) return false
  let ok = false
  try {
    const info = execFileSync('docker', ['info', '--format', '{{json .Runtimes}} {{json .DiscoveredDevices}}'], { encoding: 'utf8', timeout: 10_000 })
    ok = /"nvidia":/.test(info) || info.includes('nvidia.com/gpu')
  } catch {
    // reported below
  }
  if (!ok) {
    if (process.env.NEKO_REQUIRE_GPU === '1') throw new Error(`${suite}: NEKO_REQUIRE_GPU=1 but the engine has no NVIDIA runtime or CDI device`)
    process.stderr.write(`[skip] ${suite}: the engine has no NVIDIA runtime or CDI device; the GPU path runs on a host with one\n`)
  }
  return ok
}
