import type { PublishedMatch, VerdictStatus } from '../../protocol/types.js'

/** Worst first: the order in which a release's overall status is decided. */
const SEVERITY: VerdictStatus[] = ['unreproducible', 'disputed', 'failed', 'unsettled', 'pending', 'reproducible']

export function worstStatus (statuses: Iterable<VerdictStatus>): VerdictStatus {
  let worst = SEVERITY.length - 1
  let any = false
  for (const s of statuses) {
    any = true
    worst = Math.min(worst, SEVERITY.indexOf(s))
  }
  return any ? SEVERITY[worst]! : 'pending'
}

/** What of a verdict a gate reads: a protocol `TargetVerdict` and a `TargetConsensus` both are one. */
export interface GatedTarget {
  status: VerdictStatus
  published: { match: PublishedMatch }
}

/** A target a CI gate must stop on: not reproducible, or reproducible but not what the registry serves. */
export function targetFails (t: GatedTarget): boolean {
  return t.status === 'unreproducible' || t.status === 'disputed' || t.status === 'failed' || t.published.match === 'no'
}

/**
 * What a verdict gate (`status`, `verify`, `verify-image`) answers: failures outrank
 * `unsettled` (everyone answered, no quorum: waiting is pointless), which outranks pending,
 * which outranks success.
 */
export type GateOutcome = 'ok' | 'not-reproducible' | 'unsettled' | 'pending'

/** No target at all is `pending`: nothing judged is not a pass. */
export function gateOutcome (targets: readonly GatedTarget[]): GateOutcome {
  if (targets.some(targetFails)) return 'not-reproducible'
  if (targets.some(t => t.status === 'unsettled')) return 'unsettled'
  if (targets.length === 0 || targets.some(t => t.status === 'pending')) return 'pending'
  return 'ok'
}
