import type { TrustPolicy } from '../../protocol/policy.js'
import type { StoredMessage } from '../store/types.js'
import { fetchSplitViews, filterWitnessed } from './remote.js'

/**
 * What `status --node` adds from the node's log: the split views it has proven (always),
 * and, when the policy has a `witnesses` section, only the claims proven to be in a
 * checkpoint cosigned by enough of them (each excluded claim is named with its reason).
 */
export async function reportWitnessing (nodeUrl: string, policy: TrustPolicy, claims: StoredMessage[], say: (line: string) => void): Promise<StoredMessage[]> {
  const splits = await fetchSplitViews(nodeUrl).catch(() => [])
  for (const s of splits) say(`neko-rebuilder: split view: the log of key ${s.logKeyId} signed two inconsistent checkpoints (seen ${s.detectedAt}; proof at ${nodeUrl.replace(/\/+$/, '')}/tlog/split-views)\n`)
  if (policy.witnesses === undefined) return claims
  const r = await filterWitnessed(nodeUrl, claims, policy.witnesses)
  for (const e of r.excluded) say(`neko-rebuilder: claim ${e.id.slice(0, 16)} by ${e.keyId.slice(0, 16)} not counted: ${e.reason}\n`)
  say(`neko-rebuilder: ${r.kept.length} of ${claims.length} claims are in a checkpoint cosigned by at least ${policy.witnesses.threshold} of the policy's witnesses\n`)
  return r.kept
}
