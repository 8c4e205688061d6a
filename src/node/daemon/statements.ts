import { keyIdOf } from '../../protocol/keys.js'
import type { Logger } from '../logger.js'
import { keyOfPeerId } from '../p2p/identity.js'
import { STATEMENTS_DEFAULTS, type P2PNode, type StatementsSource, type TopicHandler } from '../p2p/index.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Store } from '../store/types.js'
import { listReports, type ReportCheck, type ReportGossip } from '../divergence/index.js'
import type { BuilderRegistry } from './builders.js'

/** A peer's statements are fetched again on a new connection only after this long. */
const STATEMENTS_REFETCH_MS = 10 * 60_000
/** Peers remembered for that, at most. */
const STATEMENTS_PEERS = 4096
/**
 * A peer met just as it starts may answer before it has signed its own statement, which it
 * then publishes once, perhaps before a mesh reaches this node: asked again this soon (doubling),
 * this many times, until its own statement is in hand.
 */
const OWN_STATEMENT_RETRY_MS = 2_000
const OWN_STATEMENT_RETRIES = 3
/**
 * A claim from a trusted builder whose statement this node lacks sends it back to the peer that
 * relayed the claim (that peer may have met the builder since it was first asked), at most this
 * often per builder.
 */
const MISSING_BUILDER_RETRY_MS = 60_000

export interface StatementsExchange {
  /** What this node serves a peer that meets it. */
  source: StatementsSource
  /** Fetches what a peer met holds (at most once per 10 minutes a peer, sooner while its own statement is missing); never throws. */
  fetch: (peerId: string) => Promise<void>
  /**
   * A message signed by `keyId` came through `peerId`: when `keyId` is a builder the policy
   * trusts and its statement is missing here, that peer is asked again; never throws.
   */
  signedBy: (keyId: string, peerId: string) => void
  stop: () => void
}

/**
 * Capabilities statements, divergence reports and test results are gossiped once, as they
 * change, and never repeated on a timer: a node fetches what a peer holds when it meets it,
 * and checks each item as gossip is checked (a refused item costs the peer as an invalid
 * message would).
 */
export function createStatementsExchange<T> (components: {
  store: Store
  policy: () => TrustPolicy
  builders: BuilderRegistry
  reports: ReportGossip
  testResults: { topic: TopicHandler<T>, own: (max: number) => Promise<Uint8Array[]> }
  p2p: Pick<P2PNode, 'statements' | 'penalize'>
  log: Logger
}): StatementsExchange {
  const { store, policy, builders, reports, testResults, p2p, log } = components
  const fetched = new Map<string, number>() // peer → when its statements were last fetched
  const retries = new Map<string, number>() // peer → fetches made again for its own statement
  const missingAsked = new Map<string, number>() // trusted builder → when a peer was last asked for its statement
  let stopped = false

  /** The key id of the node behind `peerId` (Ed25519 peers only). */
  const keyIdOfPeer = (peerId: string): string | undefined => { try { return keyIdOf(keyOfPeerId(peerId)) } catch { return undefined } }

  function retryForOwnStatement (peerId: string): void {
    const keyId = keyIdOfPeer(peerId)
    const tries = retries.get(peerId) ?? 0
    if (stopped || keyId === undefined || tries >= OWN_STATEMENT_RETRIES || builders.has(keyId)) { retries.delete(peerId); return }
    if (!retries.has(peerId) && retries.size >= STATEMENTS_PEERS) return
    retries.set(peerId, tries + 1)
    setTimeout(() => { fetched.delete(peerId); void exchange.fetch(peerId) }, OWN_STATEMENT_RETRY_MS * 2 ** tries).unref()
  }

  const exchange: StatementsExchange = {
    source: async () => ({
      capabilities: builders.list().sort((a, b) => Number(b.self) - Number(a.self)).map(b => Buffer.from(b.envelopeJson, 'utf8')),
      reports: (await listReports(store, {}, STATEMENTS_DEFAULTS.maxReports)).map(r => Buffer.from(r.envelopeJson, 'utf8')),
      testResults: await testResults.own(STATEMENTS_DEFAULTS.maxTestResults)
    }),
    async fetch (peerId) {
      const now = Date.now()
      const last = fetched.get(peerId)
      if (last !== undefined && now - last < STATEMENTS_REFETCH_MS) return
      if (last === undefined && fetched.size >= STATEMENTS_PEERS) fetched.delete(fetched.keys().next().value as string)
      fetched.set(peerId, now)
      let got
      try {
        got = await p2p.statements(peerId)
      } catch (err) {
        log.debug({ peer: peerId, err: (err as Error).message }, 'fetching a peer\'s statements failed')
        retryForOwnStatement(peerId)
        return
      }
      let invalid = 0
      for (const data of got.capabilities) if (builders.receive(data) === 'reject') invalid++
      for (const data of got.reports) {
        const check: ReportCheck = await reports.check(data)
        if (check.verdict === 'reject') invalid++
        if (check.verdict === 'accept') await reports.receive(data, check).catch((err: unknown) => { log.warn({ err }, 'storing a divergence report failed') })
      }
      for (const data of got.testResults) {
        const check = await testResults.topic.validate(data, peerId)
        if (check.outcome === 'reject') invalid++
        if (check.outcome === 'accept') await testResults.topic.deliver(check.value, data, peerId)
      }
      if (invalid > 0) p2p.penalize(peerId, invalid)
      else retryForOwnStatement(peerId)
    },
    signedBy (keyId, peerId) {
      if (stopped || !policy().builderKeys.has(keyId)) return
      const now = Date.now()
      const last = missingAsked.get(keyId)
      if (last !== undefined && now - last < MISSING_BUILDER_RETRY_MS) return
      if (builders.has(keyId)) return
      missingAsked.set(keyId, now) // bounded by the policy's builder keys
      fetched.delete(peerId)
      void exchange.fetch(peerId)
    },
    stop () { stopped = true }
  }
  return exchange
}
