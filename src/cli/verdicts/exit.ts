import type { GateOutcome } from '../../node/consensus/outcome.js'
import { EXIT } from '../exit-codes.js'

const CODES: Record<GateOutcome | 'forged', number> = {
  ok: EXIT.OK,
  'not-reproducible': EXIT.NOT_REPRODUCIBLE,
  unsettled: EXIT.UNSETTLED,
  pending: EXIT.PENDING,
  forged: EXIT.FORGED
}

/** The one mapping from a verdict gate's outcome to an exit code, for `status`, `verify` and `verify-image` (docs/cli.md). */
export function exitCodeFor (outcome: GateOutcome | 'forged'): number {
  return CODES[outcome]
}
