/**
 * A node's network log (`join --network-log ORIGIN`), put together: the log, the verdicts it
 * enters, this node's own log heads, and the pusher to the configured C2SP witnesses.
 *
 * The verdicts a network log enters: for the newest releases in the store, each target's
 * verdict whose quorum is settled, as the digest of the VSA statement this node would sign for
 * it (verifier: its key; time verified: when the release's announcement arrived, so the
 * digest changes only when the verdict does).
 */
import { createHash } from 'node:crypto'
import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { parseCheckpoint } from '../../protocol/tlog/checkpoint.js'
import { parseNote } from '../../protocol/tlog/note.js'
import { buildVsa, verifierIdOf } from '../../protocol/vsa.js'
import { evaluateRelease } from '../consensus/evaluate.js'
import { readRelease, storeReleaseSource } from '../consensus/release.js'
import { createConsensusService, type ConsensusService } from '../consensus/service.js'
import type { ComponentLogger } from '../logger.js'
import type { Store } from '../store/types.js'
import { createNetworkLog, type NetworkLog, type NetworkLogInit, type NetworkLogVerdict } from './network-log.js'
import type { TransparencyLog } from './types.js'
import { createWitnessPusher, type HttpWitnessTarget, type WitnessPushStatus } from './witness-push.js'

/** Releases looked at per interval, newest first. */
const RELEASES = 20
const SETTLED = new Set(['reproducible', 'unreproducible', 'disputed', 'failed'])

export function networkVerdicts (components: { store: Store, policy: TrustPolicy, consensus: Pick<ConsensusService, 'releases'>, keyId: string }): () => Promise<NetworkLogVerdict[]> {
  const { store, policy, consensus, keyId } = components
  return async () => {
    const out: NetworkLogVerdict[] = []
    const source = storeReleaseSource(store, policy, 'the store of this node')
    for (const r of (await consensus.releases()).filter(r => r.trusted).slice(0, RELEASES)) {
      const release = await readRelease(source, policy, r.tag, { repository: r.repository }).catch(() => undefined)
      if (release === undefined) continue
      for (const v of evaluateRelease({ policy, chosen: release.chosen, others: release.others, claims: release.claims }).verdicts) {
        if (!SETTLED.has(v.status)) continue
        const claimIds = [...new Set([...v.agreeing, ...v.dissenting, ...v.failed].map(x => x.claimId))].sort()
        const statement = buildVsa(v, { verifier: verifierIdOf(keyId), claimIds, timeVerified: release.chosen.receivedAt })
        out.push({ key: v.key, status: v.status, vsaDigest: `sha256:${createHash('sha256').update(JSON.stringify(statement)).digest('hex')}` })
      }
    }
    return out
  }
}

export interface NodeNetworkLogComponents {
  logger?: ComponentLogger
  identity: SigningIdentity
  store: Store
  policy: TrustPolicy
  /** This node's own log: its heads are entered too. */
  tlog?: Pick<TransparencyLog, 'onCheckpoint'>
}

export interface NodeNetworkLogInit extends NetworkLogInit {
  witnessUrls?: HttpWitnessTarget[]
  /** Least time between two pushes to one witness (ms; default: the checkpoint interval). */
  pushIntervalMs?: number
}

export interface NodeNetworkLog {
  readonly log: NetworkLog
  start: () => Promise<void>
  stop: () => Promise<void>
  status: () => { origin: string, vkey: string, size: number, pushed: WitnessPushStatus[] }
}

export function createNodeNetworkLog (components: NodeNetworkLogComponents, init: NodeNetworkLogInit): NodeNetworkLog {
  const { logger, identity, store, policy } = components
  // Read afresh each interval (one listing of the store's announcements every few minutes):
  // whatever reached the store, by ingest or otherwise, is judged.
  const consensus = { releases: async () => await createConsensusService({ store, policy }).releases() }
  const log = createNetworkLog({ ...(logger !== undefined ? { logger } : {}), identity, verdicts: networkVerdicts({ store, policy, consensus, keyId: identity.keyId }) }, init)
  const witnesses = init.witnessUrls ?? []
  const pusher = witnesses.length > 0 ? createWitnessPusher({ ...(logger !== undefined ? { logger } : {}), log }, { witnesses, minIntervalMs: init.pushIntervalMs ?? init.checkpointIntervalMs ?? 300_000 }) : undefined
  components.tlog?.onCheckpoint(note => {
    const cp = parseCheckpoint(parseNote(note).text)
    log.noteCheckpoint(cp.origin, cp.size, cp.rootHash)
  })
  return {
    log,
    async start () {
      await log.start()
      pusher?.start()
    },
    async stop () {
      await pusher?.stop()
      await log.stop()
    },
    status: () => ({ origin: log.origin, vkey: log.vkey, size: log.size(), pushed: pusher?.status() ?? [] })
  }
}
