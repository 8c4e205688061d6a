import Dockerode from 'dockerode'
import { describe, expect, it } from 'vitest'
import { createRebuilder, EngineNotReadyError } from '../../src/node/rebuilder/index.js'
import { capabilitiesOf, parseBuildxInspect, parseBuildxVersion, type EngineInfo } from '../../src/node/rebuilder/engine.js'
import { engineAvailable } from '../helpers/engine.js'

const inspect = `Name:          default
Driver:        docker
Last Activity: 2026-11-25 18:30:37 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.13.2
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/arm64, linux/arm/v7
`

describe('engine facts', () => {
  it('parses buildx inspect and version output', () => {
    expect(parseBuildxInspect(inspect)).toEqual({ name: 'default', driver: 'docker', buildkit: 'v0.13.2', platforms: ['linux/amd64', 'linux/amd64/v2', 'linux/amd64/v3', 'linux/arm64', 'linux/arm/v7'], worker: 'default/default' })
    // With the worker's labels, its containerd UUID identifies it.
    const labelled = `${inspect}Labels:\n org.mobyproject.buildkit.worker.containerd.uuid:      cf0e9662-6dfb-486b-8d59-b1b0e95a9d3f\n org.mobyproject.buildkit.worker.hostname:             vm\n`
    expect(parseBuildxInspect(labelled).worker).toBe('default/default cf0e9662-6dfb-486b-8d59-b1b0e95a9d3f')
    expect(parseBuildxVersion('github.com/docker/buildx v0.13.1 788433953af10f2a698f5c07611dddce2e08c7a0\n')).toBe('v0.13.1')
    expect(parseBuildxVersion('github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3')).toBe('0.13.1+ds1')
  })

  it('offers the native platform unemulated and the builder\'s others as emulated', () => {
    const info = { arch: 'amd64', nvidia: false, engineVersion: '26.1.5', apiVersion: '1.45', buildx: 'v0.13.1', kernel: '6.1', builder: parseBuildxInspect(inspect) } as EngineInfo
    const caps = capabilitiesOf(info)
    expect(caps.platforms).toEqual([
      { platform: 'linux/amd64', emulated: false },
      { platform: 'linux/arm64', emulated: true },
      { platform: 'linux/arm/v7', emulated: true }
    ])
    expect(caps.environment).toMatchObject({ engine: { name: 'docker', version: '26.1.5', apiVersion: '1.45' }, buildkit: 'v0.13.2', arch: 'amd64' })
  })
})

describe.skipIf(!engineAvailable('build: engine'))('engine check against the real engine', () => {
  it('reports versions, arch and an OCI-capable builder', async () => {
    const info = await createRebuilder({}, { workDir: '/tmp' }).checkEngine()
    expect(info.engineVersion).not.toBe('')
    expect(info.apiVersion).toMatch(/^\d+\.\d+$/)
    expect(['amd64', 'arm64']).toContain(info.arch)
    expect(info.ociExport).toBe(true)
    expect(info.buildx).not.toBe('')
    expect(info.builder.platforms.length).toBeGreaterThan(0)
  })

  it('says what to change when the engine does not answer', async () => {
    const down = createRebuilder({ docker: new Dockerode({ socketPath: '/nonexistent/docker.sock' }) }, { workDir: '/tmp' })
    await expect(down.checkEngine()).rejects.toBeInstanceOf(EngineNotReadyError)
    await expect(down.checkEngine()).rejects.toThrow(/DOCKER_HOST/)
  })
})
