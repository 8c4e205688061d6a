import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRegistryClient } from '../../src/node/registry/index.js'
import { engineAvailable } from '../helpers/engine.js'
import { OCI_INDEX, pushOciArchive, registryAvailable, startRegistry } from '../helpers/registry.js'
import type { TestRegistry } from '../helpers/registry.js'

const available = registryAvailable('registry OCI archive push') && engineAvailable('registry OCI archive push')
const FIXTURES = process.env.NEKO_FIXTURE_DIR ?? '/var/lib/neko-rebuilder/fixtures'

/** Reads a file out of a tarball (the OCI layout buildx exported). */
function fromTar (tar: string, path: string): Buffer {
  return execFileSync('tar', ['-xOf', tar, path], { maxBuffer: 16 * 1024 * 1024 })
}

interface Blob {
  manifests?: Array<{ digest: string, platform: { architecture: string }, annotations?: Record<string, string> }>
  config: { digest: string }
  rootfs: { diff_ids: string[] }
}

function json (tar: string, digest: string): Blob {
  return JSON.parse(fromTar(tar, `blobs/${digest.replace(':', '/')}`).toString()) as Blob
}

/**
 * A two-platform image built FROM scratch by the real engine (BuildKit provenance
 * attestations included), exported as an OCI layout, pushed to the real registry over the
 * distribution API, then read back by the client: what the registry publishes must be
 * exactly what the build exported.
 */
describe.skipIf(!available)('buildx OCI export pushed to a real registry', () => {
  let registry: TestRegistry
  let dir: string
  let tar: string

  beforeAll(async () => {
    registry = await startRegistry()
    dir = mkdtempSync(join(tmpdir(), 'neko-oci-archive-'))
    copyFileSync(join(FIXTURES, 'busybox-amd64'), join(dir, 'busybox-amd64'))
    copyFileSync(join(FIXTURES, 'busybox-arm64'), join(dir, 'busybox-arm64'))
    // COPY only, no RUN: arm64 needs no emulation.
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nARG TARGETARCH\nCOPY busybox-${TARGETARCH} /bin/busybox\nCMD ["/bin/busybox", "true"]\n')
    tar = join(dir, 'image.tar')
    execFileSync('docker', ['buildx', 'build', '--platform', 'linux/amd64,linux/arm64', '--provenance=mode=min',
      '--build-arg', 'SOURCE_DATE_EPOCH=0', '--output', `type=oci,dest=${tar},rewrite-timestamp=true`, dir],
    { stdio: 'ignore', timeout: 120_000 })
  })
  afterAll(async () => {
    await registry?.stop()
    if (dir != null) rmSync(dir, { recursive: true, force: true })
  })

  it('publishes what the build exported, per platform, attestations skipped', async () => {
    const top = await pushOciArchive(registry.url, 'neko/busybox', 'v1', tar)
    expect(top.mediaType).toBe(OCI_INDEX)
    const index = json(tar, top.digest)
    const entries = index.manifests ?? []
    expect(entries.some(e => e.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest')).toBe(true)

    const client = createRegistryClient()
    for (const arch of ['amd64', 'arm64']) {
      const entry = entries.find(e => e.platform.architecture === arch && e.annotations == null)!
      const manifest = json(tar, entry.digest)
      const config = json(tar, manifest.config.digest)
      const published = await client.resolve(`${registry.host}/neko/busybox:v1`, `linux/${arch}`)
      expect(published).toEqual({
        reference: `${registry.host}/neko/busybox:v1`,
        indexDigest: top.digest,
        manifestDigest: entry.digest,
        configDigest: manifest.config.digest,
        diffIds: config.rootfs.diff_ids,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        platform: `linux/${arch}`
      })
      expect(published.diffIds).toHaveLength(1)
    }
    expect(await client.manifestDigest(`${registry.host}/neko/busybox:v1`)).toBe(top.digest)
  })

  it('the engine pushes to a loopback registry without TLS (127.0.0.0/8 is insecure by default)', async () => {
    const name = `${registry.host}/neko/pushed:v1`
    const metadata = join(dir, 'metadata.json')
    try {
      // rewrite-timestamp conflicts with the image exporter's unpack, so it is left out here.
      execFileSync('docker', ['buildx', 'build', '--platform', 'linux/amd64', '--provenance=false',
        '--metadata-file', metadata, '--output', `type=registry,name=${name}`, dir],
      { stdio: 'ignore', timeout: 120_000 })
      const built = JSON.parse(readFileSync(metadata, 'utf8')) as Record<string, string>
      const published = await createRegistryClient().resolve(name, 'linux/amd64')
      expect(published.manifestDigest).toBe(built['containerimage.digest'])
      expect(published.configDigest).toBe(built['containerimage.config.digest'])
      expect(published.diffIds).toHaveLength(1)
    } finally {
      // The image exporter also stores the image in the engine: remove the tag this test made.
      try { execFileSync('docker', ['image', 'rm', name], { stdio: 'ignore' }) } catch { /* not stored */ }
    }
  })
})
