import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { LimitError } from '../../src/protocol/errors.js'
import {
  createRegistryClient,
  DigestMismatchError,
  ManifestNotFoundError,
  PlatformNotFoundError,
  RegistryUnreachableError
} from '../../src/node/registry/index.js'
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, pushSyntheticImage, registryAvailable, startRegistry } from '../helpers/registry.js'
import type { SyntheticPush, TestRegistry } from '../helpers/registry.js'
import { startTamperingProxy } from './proxy.js'

const available = registryAvailable('registry client')

describe.skipIf(!available)('registry client against a real registry', () => {
  let registry: TestRegistry
  let single: SyntheticPush
  let multi: SyntheticPush
  let dockerList: SyntheticPush
  const client = createRegistryClient({}, { timeoutMs: 10_000 })

  beforeAll(async () => {
    registry = await startRegistry()
    single = await pushSyntheticImage(registry.url, 'neko/single', 'v1', { platforms: ['linux/amd64'] })
    multi = await pushSyntheticImage(registry.url, 'neko/multi', 'v1', { platforms: ['linux/amd64', 'linux/arm64'], attestation: true })
    dockerList = await pushSyntheticImage(registry.url, 'neko/docker', 'v1', { platforms: ['linux/amd64', 'linux/arm/v7'], format: 'docker' })
  })
  afterAll(async () => { await registry?.stop() })

  it('resolves a single-platform image: digest from header and bytes agree, config diff IDs read', async () => {
    const image = await client.resolve(`${registry.host}/neko/single:v1`, 'linux/amd64')
    const want = single.images[0]!
    expect(image).toEqual({
      reference: `${registry.host}/neko/single:v1`,
      manifestDigest: want.manifestDigest,
      configDigest: want.configDigest,
      diffIds: want.diffIds,
      mediaType: OCI_MANIFEST,
      platform: 'linux/amd64'
    })
    expect(image.indexDigest).toBeUndefined()
    // The registry's own digest, by HEAD, is the one computed over the bytes.
    expect(await client.manifestDigest(`${registry.host}/neko/single:v1`)).toBe(single.digest)
    expect(single.digest).toBe(want.manifestDigest)
  })

  it('refuses a platform the single image is not', async () => {
    await expect(client.resolve(`${registry.host}/neko/single:v1`, 'linux/arm64')).rejects.toThrow(PlatformNotFoundError)
  })

  it('picks amd64 and arm64 from an index and skips the attestation entry', async () => {
    const amd = await client.resolve(`${registry.host}/neko/multi:v1`, 'linux/amd64')
    const arm = await client.resolve(`${registry.host}/neko/multi:v1`, 'linux/arm64')
    expect(amd.indexDigest).toBe(multi.indexDigest)
    expect(arm.indexDigest).toBe(multi.indexDigest)
    expect(amd.manifestDigest).toBe(multi.images[0]!.manifestDigest)
    expect(arm.manifestDigest).toBe(multi.images[1]!.manifestDigest)
    expect(amd.diffIds).toEqual(multi.images[0]!.diffIds)
    expect(arm.diffIds).toEqual(multi.images[1]!.diffIds)
    expect(arm.configDigest).toBe(multi.images[1]!.configDigest)
    expect(amd.diffIds).not.toEqual(arm.diffIds)
    expect(arm.platform).toBe('linux/arm64')
    expect(amd.mediaType).toBe(OCI_MANIFEST)
    // `arm64/v8` is the same platform as `arm64`.
    expect((await client.resolve(`${registry.host}/neko/multi:v1`, 'linux/arm64/v8')).manifestDigest).toBe(arm.manifestDigest)
    expect(await client.manifestDigest(`${registry.host}/neko/multi:v1`)).toBe(multi.indexDigest)
  })

  it('never resolves to the attestation manifest, and names the platforms it has', async () => {
    const err = await client.resolve(`${registry.host}/neko/multi:v1`, 'linux/s390x').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(PlatformNotFoundError)
    expect((err as PlatformNotFoundError).available).toEqual(['linux/amd64', 'linux/arm64'])
    expect((err as Error).message).toContain(`${registry.host}/neko/multi:v1`)
    // Without a platform, two images are ambiguous: no silent pick.
    await expect(client.resolve(`${registry.host}/neko/multi:v1`)).rejects.toThrow(PlatformNotFoundError)
    expect(multi.attestationDigests).toHaveLength(1)
  })

  it('reads Docker manifest lists and variants', async () => {
    const arm = await client.resolve(`${registry.host}/neko/docker:v1`, 'linux/arm/v7')
    expect(arm.indexDigest).toBe(dockerList.indexDigest)
    expect(arm.manifestDigest).toBe(dockerList.images[1]!.manifestDigest)
    expect(arm.mediaType).toBe(DOCKER_MANIFEST)
    expect(dockerList.mediaType).toBe(DOCKER_MANIFEST_LIST)
    await expect(client.resolve(`${registry.host}/neko/docker:v1`, 'linux/arm/v6')).rejects.toThrow(PlatformNotFoundError)
  })

  it('resolves by digest', async () => {
    const image = await client.resolve(`${registry.host}/neko/multi@${multi.indexDigest!}`, 'linux/arm64')
    expect(image.manifestDigest).toBe(multi.images[1]!.manifestDigest)
    expect(image.reference).toBe(`${registry.host}/neko/multi@${multi.indexDigest!}`)
  })

  it('an unknown tag or repository is ManifestNotFoundError naming the reference', async () => {
    const err = await client.resolve(`${registry.host}/neko/single:nope`, 'linux/amd64').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ManifestNotFoundError)
    expect((err as Error).message).toContain(`${registry.host}/neko/single:nope`)
    await expect(client.manifestDigest(`${registry.host}/neko/absent:v1`)).rejects.toThrow(ManifestNotFoundError)
  })

  it('a closed port is RegistryUnreachableError', async () => {
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    const err = await client.resolve(`127.0.0.1:${port}/neko/single:v1`, 'linux/amd64').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryUnreachableError)
    expect((err as Error).message).toContain(`127.0.0.1:${port}/neko/single:v1`)
    expect((err as Error).message).toContain('ECONNREFUSED')
    await expect(client.manifestDigest(`127.0.0.1:${port}/neko/single:v1`)).rejects.toThrow(RegistryUnreachableError)
  })

  it('a registry that never answers times out as RegistryUnreachableError', async () => {
    const sockets: Socket[] = []
    const silent = createServer(s => { sockets.push(s) })
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as AddressInfo
    try {
      const quick = createRegistryClient({}, { timeoutMs: 300 })
      const err = await quick.resolve(`127.0.0.1:${port}/neko/single:v1`).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryUnreachableError)
      expect((err as Error).message).toContain('timed out')
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => silent.close(() => { resolve() }))
    }
  })

  it('a Docker-Content-Digest that lies about the bytes is DigestMismatchError', async () => {
    const lie = multi.images[1]!.manifestDigest
    const proxy = await startTamperingProxy(registry.url, (_req, res) => {
      if (res.headers['docker-content-digest'] != null) res.headers['docker-content-digest'] = lie
      return res
    })
    try {
      const err = await client.resolve(`${proxy.host}/neko/single:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DigestMismatchError)
      expect((err as DigestMismatchError).expected).toBe(lie)
      expect((err as DigestMismatchError).actual).toBe(single.digest)
      await expect(client.manifestDigest(`${proxy.host}/neko/single@${single.digest}`)).rejects.toThrow(DigestMismatchError)
    } finally {
      await proxy.stop()
    }
  })

  it('a HEAD digest the GET bytes do not hash to is DigestMismatchError', async () => {
    // The GET is honest; only the HEAD names another manifest (as after a tag moved).
    const other = multi.images[0]!.manifestDigest
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (req.method === 'HEAD' && res.headers['docker-content-digest'] != null) res.headers['docker-content-digest'] = other
      return res
    })
    try {
      const err = await client.resolve(`${proxy.host}/neko/single:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DigestMismatchError)
      expect((err as Error).message).toContain('HEAD against GET')
      expect((err as DigestMismatchError).expected).toBe(other)
      expect((err as DigestMismatchError).actual).toBe(single.digest)
    } finally {
      await proxy.stop()
    }
  })

  it('a registry without HEAD support or digest headers still resolves, by the bytes', async () => {
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      const { 'docker-content-digest': _dropped, ...headers } = res.headers
      return req.method === 'HEAD' ? { status: 405, headers, body: Buffer.alloc(0) } : { ...res, headers }
    })
    try {
      const image = await client.resolve(`${proxy.host}/neko/multi:v1`, 'linux/arm64')
      expect(image.indexDigest).toBe(multi.indexDigest)
      expect(image.manifestDigest).toBe(multi.images[1]!.manifestDigest)
      expect(await client.manifestDigest(`${proxy.host}/neko/multi:v1`)).toBe(multi.indexDigest)
    } finally {
      await proxy.stop()
    }
  })

  it('bytes that do not hash to the digest asked for are DigestMismatchError', async () => {
    // Drop the header and change one byte of every manifest: only the hash can tell.
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (!req.path.includes('/manifests/') || res.body.byteLength === 0) return res
      const body = Buffer.from(res.body.toString().replace('"schemaVersion":2', '"schemaVersion": 2'))
      const { 'docker-content-digest': _dropped, ...headers } = res.headers
      return { ...res, headers, body }
    })
    try {
      const byDigest = await client.resolve(`${proxy.host}/neko/single@${single.digest}`, 'linux/amd64').catch((e: unknown) => e)
      expect(byDigest).toBeInstanceOf(DigestMismatchError)
      expect((byDigest as DigestMismatchError).expected).toBe(single.digest)
      expect((byDigest as Error).message).toContain(`${proxy.host}/neko/single@${single.digest}`)
    } finally {
      await proxy.stop()
    }
  })

  it('a per-platform manifest that does not hash to its index entry is DigestMismatchError', async () => {
    // The index passes untouched; only manifests fetched by digest are altered.
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (!req.path.includes('/manifests/sha256:') || res.body.byteLength === 0) return res
      const { 'docker-content-digest': _dropped, ...headers } = res.headers
      return { ...res, headers, body: Buffer.from(res.body.toString().replace('"schemaVersion":2', '"schemaVersion": 2')) }
    })
    try {
      const err = await client.resolve(`${proxy.host}/neko/multi:v1`, 'linux/arm64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DigestMismatchError)
      expect((err as DigestMismatchError).expected).toBe(multi.images[1]!.manifestDigest)
    } finally {
      await proxy.stop()
    }
  })

  it('follows a blob redirect to another origin (as registries do to object storage)', async () => {
    const redirected: string[] = []
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (!req.path.includes('/blobs/')) return res
      redirected.push(req.path)
      return { status: 307, headers: { location: `${registry.url}${req.path}` }, body: Buffer.alloc(0) }
    })
    try {
      const image = await client.resolve(`${proxy.host}/neko/single:v1`, 'linux/amd64')
      expect(image.configDigest).toBe(single.images[0]!.configDigest)
      expect(image.diffIds).toEqual(single.images[0]!.diffIds)
      expect(redirected).toEqual([`/v2/neko/single/blobs/${single.images[0]!.configDigest}`])
    } finally {
      await proxy.stop()
    }
  })

  it('a config blob altered in transit is DigestMismatchError', async () => {
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (!req.path.includes('/blobs/') || res.body.byteLength === 0) return res
      return { ...res, body: Buffer.from(res.body.toString().replace('"os":"linux"', '"os":"linux" ')) }
    })
    try {
      const err = await client.resolve(`${proxy.host}/neko/single:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DigestMismatchError)
      expect((err as DigestMismatchError).expected).toBe(single.images[0]!.configDigest)
    } finally {
      await proxy.stop()
    }
  })

  it('an oversized manifest is LimitError, and a small enough one still resolves', async () => {
    const big = await pushSyntheticImage(registry.url, 'neko/big', 'v1', { annotations: { pad: 'x'.repeat(8192) } })
    const small = createRegistryClient({}, { maxManifestBytes: 4096 })
    const err = await small.resolve(`${registry.host}/neko/big:v1`, 'linux/amd64').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LimitError)
    expect((err as LimitError).field).toBe('manifest')
    expect((err as LimitError).limit).toBe(4096)
    expect((await small.resolve(`${registry.host}/neko/single:v1`)).manifestDigest).toBe(single.digest)
    expect((await client.resolve(`${registry.host}/neko/big:v1`)).manifestDigest).toBe(big.digest)
  })

  it('an oversized manifest without Content-Length is cut off while streaming', async () => {
    const proxy = await startTamperingProxy(registry.url, (_req, res) => res, { chunked: true })
    try {
      const small = createRegistryClient({}, { maxManifestBytes: 4096 })
      const err = await small.resolve(`${proxy.host}/neko/big:v1`).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(LimitError)
      // Counted while reading, since no Content-Length announced it.
      expect((err as LimitError).actual).toBeGreaterThan(4096)
      expect((await small.resolve(`${proxy.host}/neko/single:v1`)).manifestDigest).toBe(single.digest)
    } finally {
      await proxy.stop()
    }
  })

  it('an index entry declaring a size over the limit is refused before it is fetched', async () => {
    const bigChild = await pushSyntheticImage(registry.url, 'neko/bigchild', 'v1', { index: true, annotations: { pad: 'y'.repeat(8192) } })
    const paths: string[] = []
    const proxy = await startTamperingProxy(registry.url, (req, res) => { paths.push(`${req.method} ${req.path}`); return res })
    try {
      const small = createRegistryClient({}, { maxManifestBytes: 4096 })
      const err = await small.resolve(`${proxy.host}/neko/bigchild:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(LimitError)
      expect((err as LimitError).actual).toBeGreaterThan(8192)
      expect(paths).toEqual(['HEAD /v2/neko/bigchild/manifests/v1', 'GET /v2/neko/bigchild/manifests/v1'])
      expect(bigChild.mediaType).toBe(OCI_INDEX)
    } finally {
      await proxy.stop()
    }
  })
})
