import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRegistryClient, RegistryAuthError, RegistryUnreachableError } from '../../src/node/registry/index.js'
import { pushSyntheticImage, registryAvailable, startRegistry, startTokenServer } from '../helpers/registry.js'
import type { SyntheticPush, TestRegistry, TokenServer } from '../helpers/registry.js'
import { startTamperingProxy } from './proxy.js'

const available = registryAvailable('registry bearer-token flow')

/**
 * The real registry behind its own `auth: token` configuration; the realm is a small
 * token server on loopback that signs ES256 JWTs with a certificate from the registry's
 * rootcertbundle, as Docker Hub's realm does for anonymous pulls.
 */
describe.skipIf(!available)('anonymous bearer-token flow against a real registry', () => {
  let tokens: TokenServer
  let registry: TestRegistry
  let pushed: SyntheticPush

  beforeAll(async () => {
    tokens = await startTokenServer()
    registry = await startRegistry({ auth: tokens.auth })
    pushed = await pushSyntheticImage(registry.url, 'neko/private', 'v1', {
      platforms: ['linux/amd64', 'linux/arm64'],
      authorization: tokens.pushAuthorization('neko/private')
    })
    tokens.requests.length = 0
  })
  afterAll(async () => {
    await registry?.stop()
    await tokens?.stop()
  })

  it('the registry refuses requests without a token', async () => {
    const res = await fetch(`${registry.url}/v2/neko/private/manifests/v1`)
    await res.body?.cancel()
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/)
  })

  it('fetches a token from the realm for the challenged scope, then caches it', async () => {
    const client = createRegistryClient()
    const arm = await client.resolve(`${registry.host}/neko/private:v1`, 'linux/arm64')
    expect(arm.manifestDigest).toBe(pushed.images[1]!.manifestDigest)
    expect(arm.diffIds).toEqual(pushed.images[1]!.diffIds)
    expect(tokens.requests).toEqual(['repository:neko/private:pull'])

    // Same scope: the cached token serves the index, manifest and config requests again.
    const amd = await client.resolve(`${registry.host}/neko/private:v1`, 'linux/amd64')
    expect(amd.manifestDigest).toBe(pushed.images[0]!.manifestDigest)
    expect(await client.manifestDigest(`${registry.host}/neko/private:v1`)).toBe(pushed.indexDigest)
    expect(tokens.requests).toHaveLength(1)

    // A new client has its own cache and asks again.
    await createRegistryClient().manifestDigest(`${registry.host}/neko/private:v1`)
    expect(tokens.requests).toHaveLength(2)
  })

  it('does not send the registry token along a blob redirect to another origin', async () => {
    // Blob storage on another origin: records the Authorization header it gets, then serves
    // the blob it fetched from the registry with a token of its own.
    const seen: Array<string | undefined> = []
    const storage = createServer((req, res) => {
      seen.push(req.headers.authorization)
      fetch(`${registry.url}${req.url ?? '/'}`, { headers: { authorization: tokens.pushAuthorization('neko/private') } })
        .then(async r => { res.writeHead(r.status).end(Buffer.from(await r.arrayBuffer())) })
        .catch(() => { res.writeHead(502).end() })
    })
    await new Promise<void>(resolve => storage.listen(0, '127.0.0.1', resolve))
    const storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`
    const proxy = await startTamperingProxy(registry.url, (req, res) => {
      if (!req.path.includes('/blobs/') || res.status !== 200) return res
      return { status: 307, headers: { location: `${storageUrl}${req.path}` }, body: Buffer.alloc(0) }
    })
    try {
      const image = await createRegistryClient().resolve(`${proxy.host}/neko/private:v1`, 'linux/arm64')
      expect(image.configDigest).toBe(pushed.images[1]!.configDigest)
      expect(seen).toEqual([undefined])
    } finally {
      await proxy.stop()
      storage.closeAllConnections()
      await new Promise<void>(resolve => storage.close(() => { resolve() }))
    }
  })

  it('a realm that refuses a token is RegistryAuthError', async () => {
    tokens.mode = 'refuse'
    try {
      const err = await createRegistryClient().resolve(`${registry.host}/neko/private:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryAuthError)
      expect((err as Error).message).toContain(`${registry.host}/neko/private:v1`)
      expect((err as Error).message).toContain('HTTP 403')
    } finally {
      tokens.mode = 'grant'
    }
  })

  it('a token the registry rejects is RegistryAuthError, not a retry loop', async () => {
    tokens.mode = 'wrong-scope'
    const before = tokens.requests.length
    try {
      const err = await createRegistryClient().resolve(`${registry.host}/neko/private:v1`, 'linux/amd64').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryAuthError)
      expect((err as Error).message).toContain('refused the token')
      expect(tokens.requests.length - before).toBe(1)
    } finally {
      tokens.mode = 'grant'
    }
  })

  it('a realm that does not answer is RegistryUnreachableError', async () => {
    await tokens.stop()
    const err = await createRegistryClient().resolve(`${registry.host}/neko/private:v1`, 'linux/amd64').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryUnreachableError)
    expect((err as Error).message).toContain(`${registry.host}/neko/private:v1`)
  })
})

describe.skipIf(!available)('Basic authentication', () => {
  let registry: TestRegistry

  beforeAll(async () => {
    // Any bcrypt entry will do: the client never sends credentials.
    registry = await startRegistry({ htpasswd: 'neko:$2y$05$abcdefghijklmnopqrstuO0Y9Y2kTz1e4m7qv8CqFvY9v3aZfG1Wa\n' })
  })
  afterAll(async () => { await registry?.stop() })

  it('a Basic challenge is a clear RegistryAuthError', async () => {
    const res = await fetch(`${registry.url}/v2/`)
    await res.body?.cancel()
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic /)
    const err = await createRegistryClient().resolve(`${registry.host}/neko/any:v1`, 'linux/amd64').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryAuthError)
    expect((err as Error).message).toContain('Basic')
    expect((err as Error).message).toContain(`${registry.host}/neko/any:v1`)
  })
})
