import { targetKey } from '../../protocol/target.js'
import { REPORT_ENVELOPE_BYTES, verifyDivergenceReport, type ClaimRef, type DivergenceReport } from '../../protocol/divergence-report.js'
import { checkedGossip, type CheckedGossip, type CheckedGossipComponents, type CheckedGossipLimits, type GossipCheck } from '../p2p/checked-gossip.js'
import type { Store } from '../store/types.js'
import { MAX_REPORTS_PER_TARGET, reportIdOf, reportStanding, saveReport, type StoredReport } from './reports.js'

/**
 * The divergence report topic (docs/network.md, "Divergence reports"): what a node checks
 * before it stores or relays a report, and the store it keeps them in. Observers, which build
 * nothing, receive reports this way as builders do.
 */
export interface ReportGossipComponents extends CheckedGossipComponents {
  store: Store
}

/** Defaults: envelopes up to REPORT_ENVELOPE_BYTES (64 KiB), 30 reports a minute per signer. */
export type ReportGossipInit = CheckedGossipLimits

/** What the check of one report made of it. */
export type ReportCheck = GossipCheck<DivergenceReport>

export type ReportGossip = CheckedGossip<DivergenceReport, StoredReport>

export function createReportGossip (components: ReportGossipComponents, init: ReportGossipInit = {}): ReportGossip {
  const { store, log } = components
  const maxBytes = init.maxBytes ?? REPORT_ENVELOPE_BYTES

  /** A claim the report names must, if this node has it, be that builder's claim of that image. */
  async function contradicts (ref: ClaimRef, report: DivergenceReport): Promise<string | undefined> {
    const m = await store.getMessage(ref.claimId)
    if (m == null) return undefined
    if (m.kind !== 'claim' || m.keyId !== ref.keyId) return `claim ${ref.claimId} is not a claim of ${ref.keyId}`
    if (targetKey(m.claim.target) !== targetKey(report.target)) return `claim ${ref.claimId} is of another target`
    if (m.claim.result?.manifestDigest !== ref.manifestDigest) return `claim ${ref.claimId} names another image`
    return undefined
  }

  return checkedGossip(components, {
    what: ['divergence report', 'divergence reports'],
    maxBytes,
    perSignerPerMinute: init.perSignerPerMinute ?? 30,
    verify: (envelopeJson, policy) => {
      const { keyId, report } = verifyDivergenceReport(envelopeJson, { keys: policy.builderKeys, allowEmbeddedKeys: true, maxBytes })
      return { keyId, value: report }
    },
    async refuse (keyId, report, data) {
      if (report.a.keyId !== keyId) return { verdict: 'reject', keyId, reason: `report signed by ${keyId} about the claim of ${report.a.keyId}` }
      if (report.a.keyId === report.b.keyId || report.a.manifestDigest === report.b.manifestDigest) return { verdict: 'reject', keyId, reason: 'a report compares two builders\' different images' }
      // Judged against this node's own store, which a relaying peer may not share: dropped, but
      // the relay is not penalised for what it could not know.
      const wrong = await contradicts(report.a, report) ?? await contradicts(report.b, report)
      if (wrong != null) {
        log.warn({ keyId, reason: wrong }, 'a divergence report contradicts a stored claim; dropped')
        return { verdict: 'ignore', keyId, reason: wrong }
      }
      const standing = await reportStanding(store, reportIdOf(data), report)
      if (standing.stored) return { verdict: 'ignore', keyId, reason: 'already stored' }
      if (standing.pairCreatedAt != null && standing.pairCreatedAt >= report.createdAt) return { verdict: 'ignore', keyId, reason: 'a report of this pair of claims as new or newer is stored' }
      if (standing.pairCreatedAt == null && standing.forTarget >= MAX_REPORTS_PER_TARGET) return { verdict: 'ignore', keyId, reason: `the target already has ${standing.forTarget} reports` }
      return undefined
    },
    async store (data, keyId, report) {
      const stored = await saveReport(store, Buffer.from(data).toString('utf8'), report, keyId)
      log.info({ id: stored.id, keyId, target: targetKey(report.target), causes: report.causes.map(c => `${c.count} ${c.id}`) }, 'divergence report received')
      return stored
    }
  })
}
