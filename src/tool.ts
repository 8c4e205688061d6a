import { createRequire } from 'node:module'
import { arch } from 'node:os'

/**
 * Facts about this program and the host it runs on that every layer needs: its name and
 * version (for claims, reports and the registry user agent) and the host's OCI platform.
 * It sits below everything else and imports nothing of the project.
 */

const require = createRequire(import.meta.url)

export const TOOL_NAME = 'neko-rebuilder'
/** The package version, read from package.json so there is one source of truth. */
export const TOOL_VERSION: string = (require('../package.json') as { version: string }).version

/** `{ name, version }` as claims, capabilities and reports record the tool. */
export function toolInfo (): { name: string, version: string } {
  return { name: TOOL_NAME, version: TOOL_VERSION }
}

// Node's `process.arch` and the kernel's `uname -m` (which `docker info` reports) name some
// architectures differently from OCI; the OCI names map to themselves.
const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  x86_64: 'amd64',
  amd64: 'amd64',
  aarch64: 'arm64',
  arm64: 'arm64',
  armv7l: 'arm',
  arm: 'arm',
  s390x: 's390x',
  ppc64le: 'ppc64le',
  riscv64: 'riscv64'
}

/** An architecture as Node or the kernel names it (`x64`, `x86_64`, `aarch64`) in OCI terms (`amd64`, `arm64`); undefined when unknown. */
export function ociArch (name: string): string | undefined {
  return Object.hasOwn(OCI_ARCH, name) ? OCI_ARCH[name] : undefined
}

/** This host's architecture in OCI terms (Node's own name when there is no OCI one). */
export function hostArch (): string {
  return ociArch(arch()) ?? arch()
}

/** The OCI platform of this host: `linux/amd64` on an x64 host, `linux/arm64` on arm64. */
export function nativePlatform (): string {
  return `linux/${hostArch()}`
}
