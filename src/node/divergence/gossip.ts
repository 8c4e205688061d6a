import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { REPORT_ENVELOPE_BYTES, verifyDivergenceReport, type ClaimRef, type DivergenceReport } from '../../protocol/divergence-report.js'
import type { Logger } from '../logger.js'
import { createRateLimiter } from '../rate-limit.js'
import type { Store } from '../store/types.js'
import { MAX_REPORTS_PER_TARGET, reportIdOf, reportStanding, saveReport, type StoredReport } from './reports.js'

/**
 * The divergence report topic (docs/network.md, "Divergence reports"): what a node checks
 * before it stores or relays a report, and the store it keeps them in. Observers, which build
 * nothing, receive reports this way as builders do.
 */
export interface ReportGossipComponents {
  store: Store
  policy: () => TrustPolicy
  log: Logger
}

export interface ReportGossipInit {
  /** Largest report envelope accepted. Default REPORT_ENVELOPE_BYTES (64 KiB). */
  maxBytes?: number
  /** Reports per minute accepted from one signer, whoever relays them; a quarter of it at once. Default 30. */
  perSignerPerMinute?: number
}

export interface ReportCheck {
  verdict: 'accept' | 'reject' | 'ignore'
  reason?: string
  keyId?: string
  report?: DivergenceReport
}

export interface ReportGossip {
  /** Gossip check of one report envelope. Never throws. */
  check: (data: Uint8Array) => Promise<ReportCheck>
  /** Stores a report, with what `check` found when the p2p layer hands that over (else it checks again). */
  receive: (data: Uint8Array, checked?: ReportCheck) => Promise<StoredReport | undefined>
}

export function createReportGossip (components: ReportGossipComponents, init: ReportGossipInit = {}): ReportGossip {
  const { store, log } = components
  const maxBytes = init.maxBytes ?? REPORT_ENVELOPE_BYTES
  const perMinute = init.perSignerPerMinute ?? 30
  const limiter = createRateLimiter({ perMinute, burst: Math.max(1, Math.ceil(perMinute / 4)), maxKeys: 4096 })

  /** A claim the report names must, if this node has it, be that builder's claim of that image. */
  async function contradicts (ref: ClaimRef, report: DivergenceReport): Promise<string | undefined> {
    const m = await store.getMessage(ref.claimId)
    if (m == null) return undefined
    if (m.kind !== 'claim' || m.keyId !== ref.keyId) return `claim ${ref.claimId} is not a claim of ${ref.keyId}`
    if (targetKey(m.claim.target) !== targetKey(report.target)) return `claim ${ref.claimId} is of another target`
    if (m.claim.result?.manifestDigest !== ref.manifestDigest) return `claim ${ref.claimId} names another image`
    return undefined
  }

  async function check (data: Uint8Array): Promise<ReportCheck> {
    if (data.byteLength > maxBytes) return { verdict: 'reject', reason: `report of ${data.byteLength} bytes exceeds ${maxBytes}` }
    const policy = components.policy()
    let keyId: string
    let report: DivergenceReport
    try {
      ({ keyId, report } = verifyDivergenceReport(Buffer.from(data).toString('utf8'), { keys: policy.builderKeys, allowEmbeddedKeys: true, maxBytes }))
    } catch (err) {
      return { verdict: 'reject', reason: `${(err as Error).name}: ${(err as Error).message}` }
    }
    // A stranger's report is not wrong, only not ours to keep: dropped, not relayed, not penalised.
    if (!policy.builderKeys.has(keyId)) return { verdict: 'ignore', keyId, reason: `report signed by ${keyId}, not a builder of the policy` }
    if (report.a.keyId !== keyId) return { verdict: 'reject', keyId, reason: `report signed by ${keyId} about the claim of ${report.a.keyId}` }
    if (report.a.keyId === report.b.keyId || report.a.manifestDigest === report.b.manifestDigest) return { verdict: 'reject', keyId, reason: 'a report compares two builders\' different images' }
    try {
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
      // Counted once the report is new here: a relayed copy of a stored one costs its signer nothing.
      if (!limiter.take(keyId)) return { verdict: 'ignore', keyId, reason: `signer ${keyId} over its rate of ${perMinute} reports a minute` }
    } catch (err) {
      // A store problem is ours, not the sender's fault.
      log.warn({ err }, 'could not read the store to check a divergence report')
      return { verdict: 'ignore', reason: 'store unavailable' }
    }
    return { verdict: 'accept', keyId, report }
  }

  return {
    async check (data) {
      try {
        return await check(data)
      } catch (err) {
        log.warn({ err }, 'checking a divergence report failed unexpectedly; rejecting')
        return { verdict: 'reject', reason: 'validator error' }
      }
    },
    async receive (data, checked) {
      const r = checked ?? await check(data)
      if (r.verdict !== 'accept' || r.keyId === undefined || r.report === undefined) return undefined
      const stored = await saveReport(store, Buffer.from(data).toString('utf8'), r.report, r.keyId)
      log.info({ id: stored.id, keyId: r.keyId, target: targetKey(r.report.target), causes: r.report.causes.map(c => `${c.count} ${c.id}`) }, 'divergence report received')
      return stored
    }
  }
}
