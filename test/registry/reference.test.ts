import { describe, expect, it } from 'vitest'
import { LimitError, ValidationError } from '../../src/protocol/errors.js'
import { isLoopbackHost, parseReference } from '../../src/node/registry/reference.js'
import { parseChallenge, createTokenCache } from '../../src/node/registry/auth.js'
import { formatPlatform, parsePlatform, selectPlatform } from '../../src/node/registry/platform.js'
import type { IndexEntry } from '../../src/node/registry/platform.js'

const D = `sha256:${'a'.repeat(64)}`

describe('parseReference', () => {
  it.each([
    ['nginx', 'docker.io', 'registry-1.docker.io', 'library/nginx', 'latest', undefined],
    ['m1k1o/neko:firefox', 'docker.io', 'registry-1.docker.io', 'm1k1o/neko', 'firefox', undefined],
    ['docker.io/m1k1o/neko:base', 'docker.io', 'registry-1.docker.io', 'm1k1o/neko', 'base', undefined],
    ['index.docker.io/library/debian:bookworm', 'docker.io', 'registry-1.docker.io', 'library/debian', 'bookworm', undefined],
    ['ghcr.io/m1k1o/neko/firefox:3.0.0', 'ghcr.io', 'ghcr.io', 'm1k1o/neko/firefox', '3.0.0', undefined],
    ['127.0.0.1:5000/neko/app:v1', '127.0.0.1:5000', '127.0.0.1:5000', 'neko/app', 'v1', undefined],
    ['localhost/neko', 'localhost', 'localhost', 'neko', 'latest', undefined],
    ['localhost:5000/neko@' + D, 'localhost:5000', 'localhost:5000', 'neko', undefined, D],
    ['[::1]:5000/a/b:t@' + D, '[::1]:5000', '[::1]:5000', 'a/b', 't', D],
    ['Registry/app', 'Registry', 'Registry', 'app', 'latest', undefined],
    ['a__b/c-d.e_f:Tag_1.2-3', 'docker.io', 'registry-1.docker.io', 'a__b/c-d.e_f', 'Tag_1.2-3', undefined]
  ])('%s', (ref, registry, apiHost, repository, tag, digest) => {
    const r = parseReference(ref)
    expect(r.registry).toBe(registry)
    expect(r.apiHost).toBe(apiHost)
    expect(r.repository).toBe(repository)
    expect(r.tag).toBe(tag)
    expect(r.digest).toBe(digest)
  })

  it('gives a canonical form', () => {
    expect(parseReference('nginx').canonical).toBe('docker.io/library/nginx:latest')
    expect(parseReference(`ghcr.io/a/b:1@${D}`).canonical).toBe(`ghcr.io/a/b:1@${D}`)
  })

  it.each([
    ['', 'empty'],
    ['Nginx', 'invalid repository path'],
    ['nginx:', 'invalid tag'],
    ['nginx:-x', 'invalid tag'],
    [`nginx:${'t'.repeat(129)}`, 'invalid tag'],
    ['nginx@sha256:abc', 'digest'],
    [`nginx@md5:${'a'.repeat(32)}`, 'digest'],
    [`nginx@sha256:${'A'.repeat(64)}`, 'digest'],
    ['ghcr.io/', 'missing repository'],
    ['ghcr.io//a', 'invalid repository path'],
    ['a/-b', 'invalid repository path'],
    ['host:99999/a', 'invalid registry host'],
    ['ho_st.io/a', 'invalid registry host'],
    ['a b', 'invalid'],
    ['a/b/../c', 'invalid repository path']
  ])('refuses %j', (ref, message) => {
    const err = (() => { try { parseReference(ref, 'published') } catch (e) { return e } })()
    expect(err).toBeInstanceOf(ValidationError)
    expect((err as ValidationError).field).toBe('published')
    expect((err as Error).message).toContain(message)
  })

  it('limits the length', () => {
    expect(() => parseReference('a/'.repeat(600) + 'b')).toThrow(LimitError)
    expect(() => parseReference(`ghcr.io/${'a'.repeat(250)}`)).toThrow(LimitError)
  })

  it('knows loopback hosts', () => {
    expect(isLoopbackHost('127.0.0.1:5000')).toBe(true)
    expect(isLoopbackHost('127.1.2.3')).toBe(true)
    expect(isLoopbackHost('localhost:5000')).toBe(true)
    expect(isLoopbackHost('[::1]:5000')).toBe(true)
    expect(isLoopbackHost('127.0.0.1.example.com')).toBe(false)
    expect(isLoopbackHost('ghcr.io')).toBe(false)
    expect(isLoopbackHost('10.0.0.1:5000')).toBe(false)
  })
})

describe('parseChallenge', () => {
  it('reads a Docker Hub style bearer challenge with commas inside quotes', () => {
    const c = parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:m1k1o/neko:pull,push",error="insufficient_scope"')
    expect(c).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:m1k1o/neko:pull,push', error: 'insufficient_scope' }
    })
  })

  it('reads unquoted values, escapes and a Basic challenge', () => {
    expect(parseChallenge('Bearer realm=https://r/t, service=s')?.params).toEqual({ realm: 'https://r/t', service: 's' })
    expect(parseChallenge('Bearer realm="a\\"b"')?.params.realm).toBe('a"b')
    expect(parseChallenge('Basic realm="Registry Realm"')).toEqual({ scheme: 'basic', params: { realm: 'Registry Realm' } })
    expect(parseChallenge('')).toBeUndefined()
  })
})

describe('token cache', () => {
  it('keeps a token until shortly before it expires', () => {
    const cache = createTokenCache()
    cache.set('k', 't', 60, 1_000_000)
    expect(cache.get('k', 1_000_000)).toBe('t')
    expect(cache.get('k', 1_000_000 + 54_000)).toBe('t')
    expect(cache.get('k', 1_000_000 + 56_000)).toBeUndefined()
    expect(cache.get('other', 1_000_000)).toBeUndefined()
  })
})

describe('platform selection', () => {
  const entry = (digest: string, os: string, architecture: string, variant?: string, annotations?: Record<string, string>): IndexEntry => ({
    digest, platform: variant != null ? { os, architecture, variant } : { os, architecture }, ...(annotations != null ? { annotations } : {})
  })
  const entries = [
    entry('att', 'unknown', 'unknown', undefined, { 'vnd.docker.reference.type': 'attestation-manifest' }),
    entry('amd', 'linux', 'amd64'),
    entry('armv6', 'linux', 'arm', 'v6'),
    entry('armv7', 'linux', 'arm', 'v7'),
    entry('arm64', 'linux', 'arm64', 'v8'),
    // An attestation that claims a real platform is still skipped by its annotation.
    entry('att2', 'linux', 's390x', undefined, { 'vnd.docker.reference.type': 'attestation-manifest' })
  ]

  it('matches os, architecture and variant', () => {
    expect(selectPlatform(entries, parsePlatform('linux/amd64'))?.digest).toBe('amd')
    expect(selectPlatform(entries, parsePlatform('linux/arm64'))?.digest).toBe('arm64')
    expect(selectPlatform(entries, parsePlatform('linux/arm/v7'))?.digest).toBe('armv7')
    expect(selectPlatform(entries, parsePlatform('linux/arm/v5'))).toBeUndefined()
    expect(selectPlatform(entries, parsePlatform('linux/s390x'))).toBeUndefined()
    expect(selectPlatform(entries, parsePlatform('unknown/unknown'))).toBeUndefined()
  })

  it('parses and formats platforms', () => {
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64')
    expect(formatPlatform(parsePlatform('linux/arm/v7'))).toBe('linux/arm/v7')
    expect(() => parsePlatform('linux')).toThrow(ValidationError)
    expect(() => parsePlatform('linux/amd64/v1/x')).toThrow(ValidationError)
    expect(() => parsePlatform('Linux/AMD64')).toThrow(ValidationError)
  })
})
