import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Daemon } from '../../src/node/daemon/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { policyFor, startDaemon, waitFor } from './helpers.js'

describe('/api/v1/peers', () => {
  const daemons: Daemon[] = []
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  })

  it('says how the node is reached and lists its connections, direct or relayed', async () => {
    const ids = [generateIdentity(), generateIdentity()]
    const policy = policyFor(ids, [])
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(join(tmpdir(), 'neko-peers-api-')))
    const a = await startDaemon({ dir: dirs[0]!, identity: ids[0]!, policy, http: true })
    daemons.push(a)
    const b = await startDaemon({ dir: dirs[1]!, identity: ids[1]!, policy, bootstrap: [a.multiaddrs()[0]!] })
    daemons.push(b)
    await waitFor('b connected', () => a.p2p.connectedPeers().includes(b.peerId), 10_000)
    const res = await fetch(`${a.httpUrl()!}/api/v1/peers`)
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const body = await res.json() as Record<string, unknown>
    // On loopback nothing is public and no relay slot is wanted.
    expect(body).toMatchObject({ peerId: a.peerId, mode: 'local', relays: [], connections: { direct: 1, relayed: 0 }, relayServer: { serving: false, reservations: 0 }, relayRefused: { rate: 0, penalised: 0 }, relayedBytes: 0 })
    expect(body.peers).toEqual([{ peerId: b.peerId, addr: expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/), relayed: false }])
    expect(a.stats().reachability.mode).toBe('local')
  }, 30_000)
})
