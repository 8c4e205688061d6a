/**
 * A real OCI registry on loopback for tests (Debian's `docker-registry`, the distribution
 * project's registry), an optional bearer-token server for it, and helpers that push
 * images over the distribution API so no test needs the internet or a `docker pull`.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash, createPrivateKey, randomBytes, sign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createReadStream } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { extract, pack } from 'tar-stream'
import { stringify } from 'yaml'

export const REGISTRY_BIN = process.env.NEKO_REGISTRY_BIN ?? '/usr/bin/docker-registry'

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'

/**
 * Whether the registry binary is installed. Under `NEKO_REQUIRE_REGISTRY=1` (set by CI) a
 * missing binary throws, so registry tests fail rather than skip; otherwise they skip with
 * one line on stderr.
 */
export function registryAvailable (suite: string): boolean {
  if (existsSync(REGISTRY_BIN)) return true
  if (process.env.NEKO_REQUIRE_REGISTRY === '1') {
    throw new Error(`${suite}: NEKO_REQUIRE_REGISTRY=1 but ${REGISTRY_BIN} is missing`)
  }
  process.stderr.write(`[skip] ${suite}: ${REGISTRY_BIN} missing; run scripts/setup-host.sh to test against a real registry\n`)
  return false
}

export function sha256 (bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** A port free on 127.0.0.1 right now (the registry takes its address from a config file). */
export async function freePort (): Promise<number> {
  const server = createNetServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  return port
}

export interface TokenAuth {
  realm: string
  service: string
  issuer: string
  /** PEM certificate whose key signs the tokens. */
  rootCertBundle: string
}

export interface TestRegistry {
  /** `http://127.0.0.1:<port>` */
  url: string
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  host: string
  /** Where it stores blobs and manifests. */
  dataDir: string
  stop: () => Promise<void>
}

/**
 * Starts `docker-registry serve` on a free loopback port with a temporary storage directory,
 * and waits until `/v2/` answers. `auth` puts it behind a bearer-token realm
 * (startTokenServer), `htpasswd` (file content, bcrypt entries) behind Basic authentication.
 */
export async function startRegistry (opts: { auth?: TokenAuth, htpasswd?: string, readonlyOf?: TestRegistry } = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'neko-registry-'))
  const port = await freePort()
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'error', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: opts.readonlyOf?.dataDir ?? join(dir, 'data') },
      delete: { enabled: true },
      // A read-only view of another registry's storage: it serves what that one holds and
      // refuses every push (HTTP 405), as a registry in maintenance mode does.
      ...(opts.readonlyOf != null ? { maintenance: { readonly: { enabled: true } } } : {})
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') }
  }
  if (opts.auth != null) {
    config.auth = { token: { realm: opts.auth.realm, service: opts.auth.service, issuer: opts.auth.issuer, rootcertbundle: opts.auth.rootCertBundle } }
  }
  if (opts.htpasswd != null) {
    // Basic authentication: the registry answers with a Basic challenge.
    await writeFile(join(dir, 'htpasswd'), opts.htpasswd)
    config.auth = { htpasswd: { realm: 'neko-test', path: join(dir, 'htpasswd') } }
  }
  const configPath = join(dir, 'config.yml')
  await writeFile(configPath, stringify(config))

  // Keep REGISTRY_* variables of the host from reconfiguring the test registry.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')))
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'], env })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
  let exited = false
  const exit = new Promise<void>(resolve => child.once('exit', () => { exited = true; resolve() }))

  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM')
      await Promise.race([exit, new Promise(resolve => setTimeout(resolve, 5000))])
      if (!exited) child.kill('SIGKILL')
    }
    await rm(dir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited) {
      await stop()
      throw new Error(`docker-registry exited before answering: ${stderr}`)
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })
      await res.body?.cancel()
      if (res.status === 200 || res.status === 401) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`docker-registry did not answer on ${url} within 20 s: ${stderr}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  return { url, host: `127.0.0.1:${port}`, dataDir: opts.readonlyOf?.dataDir ?? join(dir, 'data'), stop }
}

export interface TokenServer {
  auth: TokenAuth
  /** Token requests received, by scope (`''` when none was asked). */
  requests: string[]
  /**
   * How the realm answers: `grant` what is asked (default), `refuse` with HTTP 403, or
   * `wrong-scope`: a valid token for another repository, which the registry rejects.
   */
  mode: 'grant' | 'refuse' | 'wrong-scope'
  /** A token granting `actions` on `repository`, as the realm would issue it. */
  issue: (repository: string, actions: string[]) => string
  /** `Bearer <token>` with pull and push on `repository`, for the push helpers. */
  pushAuthorization: (repository: string) => string
  stop: () => Promise<void>
}

function base64url (b: Uint8Array | string): string {
  return Buffer.from(b).toString('base64url')
}

/**
 * A bearer-token realm on loopback that hands anonymous tokens to anyone, as Docker Hub
 * does for public images. Tokens are ES256 JWTs carrying the signing certificate in `x5c`,
 * which the registry checks against its `rootcertbundle`. `openssl` makes the certificate.
 */
export async function startTokenServer (opts: { expiresIn?: number } = {}): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'neko-token-'))
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=neko-test-token-issuer'], { stdio: 'ignore' })
  const key: KeyObject = createPrivateKey(await readFile(keyPath))
  const certDer = Buffer.from((await readFile(certPath, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64')
  const service = 'neko-test-registry'
  const issuer = 'neko-test-issuer'
  const expiresIn = opts.expiresIn ?? 300
  const requests: string[] = []

  const issue = (repository: string, actions: string[]): string => {
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub: '',
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access: repository === '' ? [] : [{ type: 'repository', name: repository, actions }]
    }
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    return `${input}.${base64url(signature)}`
  }

  const state: TokenServer = {} as TokenServer
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (url.pathname !== '/token' || url.searchParams.get('service') !== service) {
      res.writeHead(400).end()
      return
    }
    const scope = url.searchParams.get('scope') ?? ''
    requests.push(scope)
    if (state.mode === 'refuse') {
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"details":"access denied"}')
      return
    }
    // scope is `repository:<name>:<actions>`; anonymous callers get what they ask.
    const m = /^repository:([^:]+):(.+)$/.exec(scope)
    const repository = state.mode === 'wrong-scope' ? 'neko/elsewhere' : (m?.[1] ?? '')
    const token = issue(repository, (m?.[2] ?? '').split(','))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ token, expires_in: expiresIn, issued_at: new Date().toISOString() }))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    auth: { realm: `http://127.0.0.1:${port}/token`, service, issuer, rootCertBundle: certPath },
    requests,
    mode: 'grant' as const,
    issue,
    pushAuthorization: (repository: string) => `Bearer ${issue(repository, ['pull', 'push'])}`,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
      await rm(dir, { recursive: true, force: true })
    }
  })
}

export interface PushOptions {
  /** An `Authorization` header value for registries behind token auth. */
  authorization?: string
}

function headers (opts: PushOptions, extra: Record<string, string> = {}): Record<string, string> {
  return opts.authorization != null ? { ...extra, authorization: opts.authorization } : extra
}

/** Uploads one blob (monolithic POST then PUT) unless the registry has it; returns its digest. */
export async function pushBlob (registryUrl: string, repo: string, bytes: Uint8Array, opts: PushOptions = {}): Promise<string> {
  const digest = sha256(bytes)
  const head = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: headers(opts) })
  if (head.status === 200) return digest
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(opts) })
  await start.body?.cancel()
  const location = start.headers.get('location')
  if (start.status !== 202 || location == null) throw new Error(`blob upload to ${repo} refused: HTTP ${start.status}`)
  const upload = new URL(location, registryUrl)
  upload.searchParams.set('digest', digest)
  const put = await fetch(upload, {
    method: 'PUT',
    headers: headers(opts, { 'content-type': 'application/octet-stream' }),
    body: new Uint8Array(bytes)
  })
  const text = await put.text()
  if (put.status !== 201) throw new Error(`blob ${digest} upload to ${repo} failed: HTTP ${put.status} ${text}`)
  return digest
}

/** PUTs manifest `bytes` under `reference` (a tag or its digest); returns the digest the registry reports. */
export async function pushManifest (registryUrl: string, repo: string, reference: string, bytes: Uint8Array, mediaType: string, opts: PushOptions = {}): Promise<string> {
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: headers(opts, { 'content-type': mediaType }),
    body: new Uint8Array(bytes)
  })
  const text = await res.text()
  if (res.status !== 201) throw new Error(`manifest ${reference} push to ${repo} failed: HTTP ${res.status} ${text}`)
  return res.headers.get('docker-content-digest') ?? sha256(bytes)
}

interface Descriptor {
  mediaType: string
  digest: string
  size: number
}

async function readTar (path: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  const ex = extract()
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = []
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer) })
      stream.on('end', () => {
        if (header.type === 'file') files.set(header.name.replace(/^\.\//, ''), Buffer.concat(chunks))
        next()
      })
      stream.on('error', reject)
    })
    ex.on('finish', resolve)
    ex.on('error', reject)
  })
  createReadStream(path).on('error', e => ex.destroy(e)).pipe(ex)
  await done
  return files
}

/**
 * Pushes the image of an OCI layout tarball (`docker buildx build --output
 * type=oci,dest=x.tar`) to `repo:tag`: every blob, every child manifest by digest, then
 * the top manifest or index, byte for byte. Returns the top descriptor.
 */
export async function pushOciArchive (registryUrl: string, repo: string, tag: string, ociTarPath: string, opts: PushOptions = {}): Promise<Descriptor> {
  const files = await readTar(ociTarPath)
  const blob = (digest: string): Buffer => {
    const b = files.get(`blobs/${digest.replace(':', '/')}`)
    if (b == null) throw new Error(`${ociTarPath}: blob ${digest} missing`)
    return b
  }
  const index = JSON.parse((files.get('index.json') ?? Buffer.from('{}')).toString()) as { manifests?: Descriptor[] }
  const top = index.manifests?.[0]
  if (top == null) throw new Error(`${ociTarPath}: index.json lists no image`)

  const pushTree = async (desc: Descriptor, reference: string): Promise<void> => {
    const bytes = blob(desc.digest)
    const doc = JSON.parse(bytes.toString()) as { manifests?: Descriptor[], config?: Descriptor, layers?: Descriptor[] }
    if (desc.mediaType === OCI_INDEX || desc.mediaType === DOCKER_MANIFEST_LIST) {
      for (const child of doc.manifests ?? []) await pushTree(child, child.digest)
    } else {
      for (const b of [doc.config, ...(doc.layers ?? [])]) if (b != null) await pushBlob(registryUrl, repo, blob(b.digest), opts)
    }
    await pushManifest(registryUrl, repo, reference, bytes, desc.mediaType, opts)
  }
  await pushTree(top, tag)
  return { mediaType: top.mediaType, digest: top.digest, size: top.size }
}

export interface SyntheticImage {
  platform: string
  manifestDigest: string
  configDigest: string
  diffIds: string[]
  layerDigests: string[]
}

export interface SyntheticPush {
  /** What the tag points to: the index when one was made, else the single manifest. */
  digest: string
  mediaType: string
  indexDigest?: string
  images: SyntheticImage[]
  attestationDigests: string[]
}

export interface SyntheticOptions extends PushOptions {
  /** `os/arch[/variant]` per image. Default `['linux/amd64']`. */
  platforms?: string[]
  /** Make an index even for one platform. Default: an index when more than one platform or `attestation`. */
  index?: boolean
  /** Add a BuildKit-style attestation manifest for the first image. */
  attestation?: boolean
  /** `oci` (default) or Docker schema 2 media types. */
  format?: 'oci' | 'docker'
  /** Annotations on every image manifest (OCI only), e.g. to make one large. */
  annotations?: Record<string, string>
  /** Distinguishes images pushed with otherwise equal options. */
  salt?: string
}

async function packTar (files: Record<string, string>): Promise<{ tar: Buffer, gz: Buffer }> {
  const p = pack()
  const chunks: Buffer[] = []
  const done = new Promise<void>((resolve, reject) => {
    p.on('data', (c: unknown) => { chunks.push(c as Buffer) })
    p.on('end', resolve)
    p.on('error', reject)
  })
  for (const [name, content] of Object.entries(files)) p.entry({ name, mtime: new Date(0), mode: 0o644, uid: 0, gid: 0 }, content)
  p.finalize()
  await done
  const tar = Buffer.concat(chunks)
  return { tar, gz: gzipSync(tar) }
}

/**
 * Builds and pushes small images in memory: one gzip layer and a config per platform, an
 * index over them when asked (or needed), and optionally a BuildKit-style attestation
 * manifest (platform unknown/unknown, `vnd.docker.reference.type` annotation).
 */
export async function pushSyntheticImage (registryUrl: string, repo: string, tag: string, opts: SyntheticOptions = {}): Promise<SyntheticPush> {
  const platforms = opts.platforms ?? ['linux/amd64']
  const docker = opts.format === 'docker'
  const images: SyntheticImage[] = []
  const entries: Array<Record<string, unknown>> = []
  const manifests: Array<{ bytes: Buffer, mediaType: string }> = []
  for (const platform of platforms) {
    const [os, architecture, variant] = platform.split('/') as [string, string, string | undefined]
    const layer = await packTar({ 'etc/neko-platform': `${platform} ${repo}:${tag} ${opts.salt ?? ''}\n` })
    const diffId = sha256(layer.tar)
    const layerDigest = await pushBlob(registryUrl, repo, layer.gz, opts)
    const config = Buffer.from(JSON.stringify({
      architecture, os, ...(variant != null ? { variant } : {}),
      created: '1970-01-01T00:00:00Z',
      config: {},
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'COPY neko-platform /etc/' }]
    }))
    const configDigest = await pushBlob(registryUrl, repo, config, opts)
    const manifestType = docker ? DOCKER_MANIFEST : OCI_MANIFEST
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP, digest: layerDigest, size: layer.gz.byteLength }],
      ...(opts.annotations != null && !docker ? { annotations: opts.annotations } : {})
    }))
    const manifestDigest = sha256(manifest)
    manifests.push({ bytes: manifest, mediaType: manifestType })
    images.push({ platform, manifestDigest, configDigest, diffIds: [diffId], layerDigests: [layerDigest] })
    entries.push({
      mediaType: manifestType,
      digest: manifestDigest,
      size: manifest.byteLength,
      platform: { architecture, os, ...(variant != null ? { variant } : {}) }
    })
  }

  const attestationDigests: string[] = []
  if (opts.attestation === true && images[0] != null) {
    const statement = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [], predicateType: 'https://slsa.dev/provenance/v0.2', predicate: {} }))
    const statementDigest = await pushBlob(registryUrl, repo, statement, opts)
    const config = Buffer.from(JSON.stringify({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: [statementDigest] } }))
    const configDigest = await pushBlob(registryUrl, repo, config, opts)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.in-toto+json', digest: statementDigest, size: statement.byteLength, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } }]
    }))
    const digest = sha256(manifest)
    attestationDigests.push(digest)
    manifests.push({ bytes: manifest, mediaType: OCI_MANIFEST })
    entries.push({
      mediaType: OCI_MANIFEST,
      digest,
      size: manifest.byteLength,
      platform: { architecture: 'unknown', os: 'unknown' },
      annotations: { 'vnd.docker.reference.digest': images[0].manifestDigest, 'vnd.docker.reference.type': 'attestation-manifest' }
    })
  }

  const makeIndex = opts.index ?? (platforms.length > 1 || opts.attestation === true)
  if (!makeIndex) {
    const only = manifests[0]
    if (only == null || manifests.length !== 1) throw new Error('pushSyntheticImage: without an index exactly one platform is needed')
    const digest = await pushManifest(registryUrl, repo, tag, only.bytes, only.mediaType, opts)
    return { digest, mediaType: only.mediaType, images, attestationDigests }
  }
  for (const m of manifests) await pushManifest(registryUrl, repo, sha256(m.bytes), m.bytes, m.mediaType, opts)
  const indexType = docker ? DOCKER_MANIFEST_LIST : OCI_INDEX
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: indexType, manifests: entries }))
  const digest = await pushManifest(registryUrl, repo, tag, index, indexType, opts)
  return { digest, mediaType: indexType, indexDigest: digest, images, attestationDigests }
}
