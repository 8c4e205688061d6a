import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { netnsAvailable, runInNetns } from '../helpers/netns.js'

// mDNS is multicast: the scenario runs in a network namespace of its own, where multicast
// goes round loopback and never reaches a real network.
const SUITE = 'mDNS'
const available = netnsAvailable(SUITE)

describe.skipIf(!available)(SUITE, () => {
  it('neighbours find each other without bootstrap peers, connect and gossip; a node without mDNS is never found', async () => {
    const script = join(import.meta.dirname, 'mdns-scenario.ts')
    const stdout = await runInNetns([process.execPath, '--import', 'tsx', script], { timeoutMs: 45_000, env: { ...process.env, NEKO_LOG_LEVEL: 'silent' } })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { connected: boolean, deliveredAtB?: number, strangerPeers?: number, error?: string }
    expect(result).toEqual({ connected: true, deliveredAtB: 1, strangerPeers: 0 })
  }, 60_000)
})
