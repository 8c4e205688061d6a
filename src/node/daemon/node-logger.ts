import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { ComponentLogger } from '../logger.js'
import { peerIdOf } from '../p2p/identity.js'

/**
 * The logger of one node: every record carries the node's peer id as `nodePeer` (its last 8
 * characters, enough to tell the nodes of one machine apart; `peer` is what a record is
 * about) and, as `node`, its name where the policy lists its key, so several nodes in one
 * process (the devnet) or one log stream stay apart.
 */
export function nodeLogger (logger: ComponentLogger, identity: SigningIdentity, policy: TrustPolicy): ComponentLogger {
  const listed = policy.builders.find(b => b.keyId === identity.keyId) ?? policy.announcers.find(a => a.keyId === identity.keyId)
  return logger.bind({ ...(listed != null ? { node: listed.name } : {}), nodePeer: peerIdOf(identity.privateKey).slice(-8) })
}
