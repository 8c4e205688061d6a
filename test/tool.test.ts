import { readFileSync } from 'node:fs'
import { arch } from 'node:os'
import { describe, expect, it } from 'vitest'
import { hostArch, nativePlatform, ociArch, toolInfo, TOOL_NAME, TOOL_VERSION } from '../src/tool.js'

describe('tool facts', () => {
  it('reads the version from package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string, version: string }
    expect(TOOL_VERSION).toBe(pkg.version)
    expect(TOOL_NAME).toBe(pkg.name)
    expect(toolInfo()).toEqual({ name: pkg.name, version: pkg.version })
  })

  it('maps Node and kernel architecture names to OCI ones', () => {
    expect(ociArch('x64')).toBe('amd64')
    expect(ociArch('x86_64')).toBe('amd64')
    expect(ociArch('amd64')).toBe('amd64')
    expect(ociArch('aarch64')).toBe('arm64')
    expect(ociArch('arm64')).toBe('arm64')
    expect(ociArch('armv7l')).toBe('arm')
    expect(ociArch('s390x')).toBe('s390x')
    expect(ociArch('mips64el')).toBeUndefined()
    expect(ociArch('constructor')).toBeUndefined()
  })

  it('names this host in OCI terms', () => {
    expect(hostArch()).toBe(ociArch(arch()) ?? arch())
    expect(nativePlatform()).toBe(`linux/${hostArch()}`)
    if (arch() === 'x64') expect(nativePlatform()).toBe('linux/amd64')
  })
})
