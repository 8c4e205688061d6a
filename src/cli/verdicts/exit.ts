import type { GateOutcome } from '../../node/consensus/outcome.js'
import { EXIT } from '../exit-codes.js'

/** The one mapping from a verdict gate's outcome to an exit code, for `status` and `verify` (docs/cli.md). */
export function exitCodeFor (outcome: GateOutcome): number {
  return outcome === 'ok' ? EXIT.OK : outcome === 'pending' ? EXIT.PENDING : EXIT.NOT_REPRODUCIBLE
}
