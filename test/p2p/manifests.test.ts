import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createP2PNode, MANIFEST_FRAME, MANIFEST_PROTOCOL, ManifestExchangeError } from '../../src/node/p2p/index.js'
import type { ManifestExchangeInit, ManifestSource, P2PNode } from '../../src/node/p2p/index.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { entriesDigestOf, signFileManifestHeader, type FileManifestHeader } from '../../src/protocol/divergence-report.js'
import { LOOPBACK, startRawNode } from './helpers.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`
const TARGET = { repository: 'https://example.invalid/app', commit: 'c'.repeat(40), variant: 'default', platform: 'linux/amd64' }

function entries (n: number, layer = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ layer, path: `etc/file-${i}`, type: 'file', mode: 420, uid: 0, gid: 0, size: i, mtime: 0, sha256: 'e'.repeat(64) })))
}

function header (signer: SigningIdentity, bodies: Uint8Array[], over: Partial<FileManifestHeader> = {}): Uint8Array {
  const h: FileManifestHeader = {
    target: TARGET,
    manifestDigest: DIGEST,
    platform: 'linux/amd64',
    layers: [{ diffId: `sha256:${'0'.repeat(64)}`, step: 'RUN make', entries: bodies.length }],
    entries: bodies.length,
    entriesDigest: entriesDigestOf(bodies),
    ...over
  }
  return Buffer.from(JSON.stringify(signFileManifestHeader(h, signer)))
}

async function startServer (source: ManifestSource, manifests: ManifestExchangeInit = {}): Promise<{ node: P2PNode, identity: SigningIdentity }> {
  const identity = generateIdentity()
  const node = await createP2PNode({
    privateKey: identity.privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    backfillSource: async ({ cursor }) => ({ items: [], next: cursor }),
    manifestSource: source
  }, { listen: [LOOPBACK], mdns: false, manifests })
  await node.start()
  return { node, identity }
}

async function expectFailure (p: Promise<unknown>, reason: string, remote: boolean): Promise<void> {
  const err = await p.then(() => { throw new Error('expected a ManifestExchangeError') }, (e: unknown) => e)
  expect(err).toBeInstanceOf(ManifestExchangeError)
  expect((err as ManifestExchangeError).name).toBe('ManifestExchangeError')
  expect((err as ManifestExchangeError).reason).toBe(reason)
  expect((err as ManifestExchangeError).remote).toBe(remote)
}

describe('file manifest exchange over loopback TCP', () => {
  const stops: Array<() => Promise<void>> = []
  let client: P2PNode
  let clientId: SigningIdentity

  beforeAll(async () => {
    clientId = generateIdentity()
    client = await createP2PNode({ privateKey: clientId.privateKey, validate: () => 'accept', onMessage: () => {}, backfillSource: async ({ cursor }) => ({ items: [], next: cursor }) }, { listen: [LOOPBACK], mdns: false, manifests: { maxEntries: 1000 } })
    await client.start()
    stops.push(async () => { await client.stop() })
  })

  afterAll(async () => { for (const s of stops) await s() })

  async function server (make: (id: SigningIdentity) => ManifestSource, init: ManifestExchangeInit = {}): Promise<{ addr: string, identity: SigningIdentity }> {
    // The source signs with the server's own identity, known once the server exists.
    const me: { id?: SigningIdentity } = {}
    const s = await startServer(async d => await make(me.id!)(d), init)
    me.id = s.identity
    stops.push(async () => { await s.node.stop() })
    return { addr: s.node.multiaddrs()[0]!, identity: s.identity }
  }

  const keys = (id: SigningIdentity): { keys: Map<string, typeof id.publicKey> } => ({ keys: new Map([[id.keyId, id.publicKey]]) })

  it('streams a signed manifest; the client checks the header, the counts and the entries digest', async () => {
    const bodies = entries(300)
    const s = await server(id => async d => d === DIGEST ? { header: header(id, bodies), entries: bodies } : undefined)
    const got = await client.fileManifest(s.addr, DIGEST, keys(s.identity))
    expect(got.keyId).toBe(s.identity.keyId)
    expect(got.header.entries).toBe(300)
    expect(got.entries).toHaveLength(300)
    expect(got.entries[299]).toMatchObject({ layer: 0, path: 'etc/file-299', size: 299 })
    expect(got.bytes).toBe(bodies.reduce((n, b) => n + b.byteLength, 0))
    // Another digest: refused with a reason.
    await expectFailure(client.fileManifest(s.addr, `sha256:${'cd'.repeat(32)}`, keys(s.identity)), 'not-found', true)
  })

  it('refuses entries that are not the ones signed, a header by another key, and a header naming another digest', async () => {
    const bodies = entries(5)
    const forged = await server(id => async () => ({ header: header(id, bodies), entries: [...bodies.slice(0, 4), entries(5)[3]!] }))
    await expectFailure(client.fileManifest(forged.addr, DIGEST, keys(forged.identity)), 'bad-signature', false)
    const stranger = generateIdentity()
    const other = await server(() => async () => ({ header: header(stranger, bodies), entries: bodies }))
    await expectFailure(client.fileManifest(other.addr, DIGEST, keys(other.identity)), 'bad-signature', false)
    const elsewhere = await server(id => async () => ({ header: header(id, bodies, { manifestDigest: `sha256:${'ef'.repeat(32)}` }), entries: bodies }))
    await expectFailure(client.fileManifest(elsewhere.addr, DIGEST, keys(elsewhere.identity)), 'bad-response', false)
    // More entries than the header announced.
    const extra = await server(id => async () => ({ header: header(id, bodies), entries: [...bodies, ...entries(1)] }))
    await expectFailure(client.fileManifest(extra.addr, DIGEST, keys(extra.identity)), 'too-many-entries', false)
  })

  it('applies limits on both sides: entries a client accepts, entry size and count a server sends', async () => {
    const many = entries(1500)
    const big = await server(id => async () => ({ header: header(id, many), entries: many }))
    // The client's limit is 1000 entries: the header's count is refused before any entry.
    await expectFailure(client.fileManifest(big.addr, DIGEST, keys(big.identity)), 'too-many-entries', false)
    const tiny = await server(id => async () => ({ header: header(id, entries(3)), entries: entries(3) }), { maxEntryBytes: 16 })
    await expectFailure(client.fileManifest(tiny.addr, DIGEST, keys(tiny.identity)), 'entry-too-large', true)
    const few = await server(id => async () => ({ header: header(id, entries(3)), entries: entries(3) }), { maxEntries: 2 })
    await expectFailure(client.fileManifest(few.addr, DIGEST, keys(few.identity)), 'too-many-entries', true)
  })

  it('answers a malformed request with ERROR bad-request, and a second stream of one peer with busy', async () => {
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    const bodies = entries(2)
    const s = await server(id => async () => { await held; return { header: header(id, bodies), entries: bodies } })
    const raw = await client.fileManifest(s.addr, 'sha256:nope' as string, keys(s.identity)).catch((e: unknown) => e)
    expect((raw as Error).name).toBe('ValidationError')

    // Raw bytes on the wire: a request that is not JSON gets one ERROR frame with the reason.
    const raw2 = await startRawNode()
    await raw2.start()
    stops.push(async () => { await raw2.stop() })
    const stream = await raw2.dialProtocol(multiaddr(s.addr), MANIFEST_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(Buffer.from('not json'))
    const reply = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()
    expect(reply[0]).toBe(MANIFEST_FRAME.ERROR)
    expect(JSON.parse(Buffer.from(reply.subarray(1)).toString())).toMatchObject({ reason: 'bad-request' })

    // One stream per peer at a time: a second one while the first waits on its source is refused.
    const first = client.fileManifest(s.addr, DIGEST, keys(s.identity))
    await new Promise(resolve => setTimeout(resolve, 200))
    await expectFailure(client.fileManifest(s.addr, DIGEST, keys(s.identity)), 'busy', true)
    release()
    expect((await first).entries).toHaveLength(2)
  })
})
