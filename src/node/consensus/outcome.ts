import type { VerdictStatus } from '../../protocol/types.js'
import type { TagConsensus, TargetConsensus } from './types.js'

/** Worst first: the order in which a release's overall status is decided. */
const SEVERITY: VerdictStatus[] = ['unreproducible', 'disputed', 'failed', 'pending', 'reproducible']

export function worstStatus (statuses: Iterable<VerdictStatus>): VerdictStatus {
  let worst = SEVERITY.length - 1
  let any = false
  for (const s of statuses) {
    any = true
    worst = Math.min(worst, SEVERITY.indexOf(s))
  }
  return any ? SEVERITY[worst]! : 'pending'
}

/** A target a CI gate must stop on: not reproducible, or reproducible but not what the registry serves. */
export function targetFails (t: TargetConsensus): boolean {
  return t.status === 'unreproducible' || t.status === 'disputed' || t.status === 'failed' || t.published.match === 'no'
}

/** What `status` exits with (see src/cli/exit-codes.ts): failures outrank pending, pending outranks success. */
export type GateOutcome = 'ok' | 'not-reproducible' | 'pending'

export function gateOutcome (c: TagConsensus): GateOutcome {
  if (c.targets.some(targetFails)) return 'not-reproducible'
  if (c.targets.some(t => t.status === 'pending')) return 'pending'
  return 'ok'
}
