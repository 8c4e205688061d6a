import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { natNetAvailable, runInNetNamespaces } from '../helpers/netns.js'

// Two volunteers, each behind its own NAT (a port-restricted cone and a symmetric one), a
// third behind a router that maps ports (miniupnpd), and a public node that bootstraps and
// relays: namespaces, veth pairs and iptables MASQUERADE made by the scenario, real `join`
// processes in them (nat-scenario.ts).
const SUITE = 'NAT traversal'
const available = natNetAvailable(SUITE)

interface Side { nat: string, relayedMs: number, relays: string[], storedOtherMs: number, reportedMs: number, manifestOverRelay: boolean, causes: string[], storedOtherReport: boolean, provedOtherMs: number, cosignedByOtherMs: number, cosignedSize: number, unsigned: unknown[], directMs?: number | null }

describe.skipIf(!available)(SUITE, () => {
  it('nodes behind NATs reserve relay slots on the public node, gossip to each other, fetch each other\'s file manifests for a divergence report and witness each other\'s log over the relay; the symmetric NAT gets no direct connection between the two, but one to a node whose router maps its port by UPnP; a public node reaching one over the relay is upgraded to a direct connection by DCUtR; and a node stays in the network when the bootstrap goes away', async () => {
    const script = join(import.meta.dirname, 'nat-scenario.ts')
    const { stdout } = await runInNetNamespaces([process.execPath, '--import', 'tsx', script], { timeoutMs: 280_000, env: { ...process.env, NAT_SCENARIO_TIMEOUT_MS: '150000' } })
    const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { error?: string, pubPeer: string, h1: Side, h2: Side, h3: { mappedMs: number, mappedAddrs: string[], directWithSymmetricMs: number }, relayedBytes: { total: number }, relayedBetween: boolean, bootstrapGone: { storedMs: number, h2LostBootstrap: boolean }, summary: unknown, h4: { reachedH1OverRelay: boolean, upgradedMs: number }, h2FoundH3: boolean }
    expect(r.error).toBeUndefined()
    // Both NATed nodes advertise addresses through the public relay, and only through it.
    expect(r.h1.relays).toEqual([r.pubPeer])
    expect(r.h2.relays).toEqual([r.pubPeer])
    // Each stored the other's claim (gossip through the public node) and asked the other's
    // node for a consistency proof across both NATs, over a relayed connection.
    // Times from two processes' logs: the other side may log its store a moment before the origin does.
    expect(r.h1.storedOtherMs).toBeGreaterThan(-1_000)
    expect(r.h2.storedOtherMs).toBeGreaterThan(-1_000)
    // Their claims of v1 disagree: each fetched the other's file manifest over the relay,
    // signed a divergence report naming the differing file's cause, and stored the other's.
    for (const side of [r.h1, r.h2]) {
      expect(side.reportedMs).toBeGreaterThanOrEqual(0)
      expect(side.manifestOverRelay).toBe(true)
      expect(side.causes.length).toBeGreaterThan(0)
      expect(side.storedOtherReport).toBe(true)
    }
    expect(r.h1.provedOtherMs).toBeGreaterThan(0)
    expect(r.h2.provedOtherMs).toBeGreaterThan(0)
    // And cosigned it: each log's newest checkpoint carries the other builder's cosignature.
    // On the newest checkpoint, which holds both rounds of claims (the announcement and four
    // claims: divergence reports travel apart from the log).
    expect(r.h1.cosignedByOtherMs).toBeGreaterThan(0)
    expect(r.h2.cosignedByOtherMs).toBeGreaterThan(0)
    expect(r.h1.cosignedSize).toBeGreaterThanOrEqual(5)
    expect(r.h2.cosignedSize).toBeGreaterThanOrEqual(5)
    expect(r.relayedBetween).toBe(true)
    // What went over the relay is counted: the manifests, proofs and back-fill of the release.
    expect(r.relayedBytes.total).toBeGreaterThan(0)
    // Behind a symmetric NAT no hole can be punched: the connection between them stays relayed.
    expect(r.h1.directMs).toBeNull()
    // A router that maps ports (UPnP/NAT-PMP): h3 advertises its mapped address once AutoNAT
    // confirmed it, and h2, though behind the symmetric NAT, gets a direct connection to it.
    expect(r.h3.mappedMs).toBeGreaterThan(0)
    expect(r.h3.mappedAddrs.some(a => a.startsWith('/ip4/11.0.0.3/tcp/'))).toBe(true)
    expect(r.h3.directWithSymmetricMs).toBeGreaterThan(0)
    // Where a direct connection is possible: a public node that knew only h1's relayed address
    // reached it over the relay, and the relayed connection was replaced by a direct one (DCUtR's
    // unilateral upgrade: h1 dials the public address h4 announced over the relay).
    expect(r.h4.reachedH1OverRelay).toBe(true)
    expect(r.h4.upgradedMs).toBeGreaterThan(0)
    // The public node goes away: h2, which was given only its address, is still in the network
    // (connected to h3) and stores a claim gossiped there afterwards.
    // It had found h3 itself: given only the bootstrap address, no mDNS, it dialled h3.
    expect(r.h2FoundH3).toBe(true)
    expect(r.bootstrapGone.h2LostBootstrap).toBe(true)
    expect(r.bootstrapGone.storedMs).toBeGreaterThan(-1_000)
    // join's startup summary says how the node is reached as far as it knows at start (AutoNAT
    // has not answered yet, or its relay slot is already held; "reachability changed" follows in
    // the log) and what it was asked to do.
    const { mode, relays, ...asked } = r.summary as { mode: string, relays: string[] }
    expect([{ mode: 'local', relays: [] }, { mode: 'relayed', relays: [r.pubPeer] }]).toContainEqual({ mode, relays })
    expect(asked).toEqual({ relaySlots: 'auto', upnp: true, relayServer: 'auto' })
  }, 300_000)
})
