import type { TrustPolicy } from '../../protocol/policy.js'
import type { StoredMessage } from '../store/types.js'
import { splitViewSetAside } from '../../protocol/tlog/split-view.js'
import { fetchSplitViews, fetchUnresponsive, filterWitnessed } from './remote.js'

/**
 * What `status --node` adds from the node's log: the split views it has proven (always;
 * a policy builder whose log is proven split is set aside, like an equivocating builder),
 * the logs it finds not answering proof requests (always; it cosigns none of their newer
 * checkpoints meanwhile),
 * and, when the policy has a `witnesses` section, only the claims proven to be in a
 * checkpoint cosigned by enough of them (each excluded claim is named with its reason).
 */
export async function reportWitnessing<T extends StoredMessage> (nodeUrl: string, policy: TrustPolicy, claims: T[], say: (line: string) => void): Promise<{ claims: T[], setAside: Map<string, string> }> {
  const splits = (await fetchSplitViews(nodeUrl).catch(() => [])).slice(0, 1024)
  const { setAside, proven } = splitViewSetAside(policy.builderKeys, splits)
  splits.forEach((s, i) => {
    say(`neko-rebuilder: split view: the log of key ${String(s.logKeyId).slice(0, 64)} signed two inconsistent checkpoints (${proven[i] === true ? `proof checked; builder ${policy.builderById.get(s.logKeyId)?.name ?? ''} not counted` : 'not a policy builder\'s log, proof not checked'}; ${nodeUrl.replace(/\/+$/, '')}/tlog/split-views)\n`)
  })
  for (const u of await fetchUnresponsive(nodeUrl).catch(() => [])) {
    const builder = policy.builderById.get(u.logKeyId)?.name
    say(`neko-rebuilder: unresponsive log: the log of key ${u.logKeyId}${builder !== undefined ? ` (builder ${builder})` : ''} has not answered proof requests since ${u.since} (${u.failures} failures, last: ${u.lastError}); the node cosigns none of its checkpoints beyond size ${u.cosignedSize} meanwhile\n`)
  }
  if (policy.witnesses === undefined) return { claims, setAside }
  const r = await filterWitnessed(nodeUrl, claims, policy.witnesses)
  for (const e of r.excluded) say(`neko-rebuilder: claim ${e.id.slice(0, 16)} by ${e.keyId.slice(0, 16)} not counted: ${e.reason}\n`)
  say(`neko-rebuilder: ${r.kept.length} of ${claims.length} claims are in a checkpoint cosigned by at least ${policy.witnesses.threshold} of the policy's witnesses\n`)
  return { claims: r.kept, setAside }
}
