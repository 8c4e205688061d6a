import { createHash } from 'node:crypto'
import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { verifierIdOf } from '../../protocol/vsa.js'
import { announcerTrusted, evaluateRelease } from '../consensus/evaluate.js'
import { readRelease, storeReleaseSource } from '../consensus/release.js'
import type { Logger } from '../logger.js'
import type { RegistryClient } from '../registry/types.js'
import type { RegistryWriter } from '../registry/writer.js'
import type { Store } from '../store/types.js'
import { attestRelease, type TargetAttestation } from './attest.js'

export interface AttestServiceComponents {
  store: Store
  policy: TrustPolicy
  /** The node's own identity: it signs the VSAs. */
  identity: SigningIdentity
  registry: RegistryClient
  writer: RegistryWriter
  log: Logger
}

export interface AttestServiceInit {
  /** Published image repository per variant; releases with none of these variants are left alone. */
  images: ReadonlyMap<string, string>
  policyUri: string
  /** Hex SHA-256 of the trust policy file. */
  policyDigest: string
  verifierId?: string
  /** How often every release is looked at again. Default 10 minutes. */
  intervalMs?: number
  /** Quiet time after a stored message before a pass starts. Default 30 s. */
  debounceMs?: number
}

export interface AttestService {
  start: () => void
  stop: () => Promise<void>
  /** Something was stored: look again soon. */
  poke: () => void
  /** One pass over every release now; resolves when it is done. */
  runOnce: () => Promise<TargetAttestation[]>
}

const DEFAULT_INTERVAL_MS = 10 * 60_000
const DEFAULT_DEBOUNCE_MS = 30_000

/**
 * A node's opt-in publisher: for every release a trusted announcer announced, once no
 * target is pending, it attaches the VSAs and claims to the images (`attestRelease`), and
 * again whenever a verdict or the claims behind it change. A release whose verdicts are
 * unchanged since its last attestation costs nothing; a failed pass is retried next time.
 */
export function createAttestService (components: AttestServiceComponents, init: AttestServiceInit): AttestService {
  const { store, policy, identity, log } = components
  const intervalMs = init.intervalMs ?? DEFAULT_INTERVAL_MS
  const debounceMs = init.debounceMs ?? DEFAULT_DEBOUNCE_MS
  /** Release → fingerprint of the verdicts last attested. */
  const done = new Map<string, string>()
  let timer: NodeJS.Timeout | undefined
  let debounce: NodeJS.Timeout | undefined
  let running: Promise<TargetAttestation[]> | undefined
  let started = false
  let closing = false

  async function pass (): Promise<TargetAttestation[]> {
    const out: TargetAttestation[] = []
    const announcements = await store.announcements()
    const byRelease = new Map<string, typeof announcements>()
    for (const m of announcements) {
      const a = m.announcement
      // Only releases (the one trust rule, as in `readRelease`): a stranger's announcement is none.
      if (a == null || !announcerTrusted(policy, m.keyId)) continue
      if (!a.targets.some(t => init.images.has(t.variant))) continue
      const k = `${a.repository}\x00${a.tag}`
      byRelease.set(k, [...(byRelease.get(k) ?? []), m])
    }
    const source = storeReleaseSource(store, policy, 'the store of this node')
    for (const [k, anns] of byRelease) {
      if (closing) break
      const { repository, tag } = anns[0]!.announcement
      try {
        const release = await readRelease(source, policy, tag, { repository })
        const { chosen, claims } = release
        const a = chosen.announcement
        const evaluation = evaluateRelease({ ...release, policy })
        if (evaluation.verdicts.some(v => v.status === 'pending')) continue
        const fingerprint = createHash('sha256').update(JSON.stringify([chosen.id, claims.map(c => c.id).sort(), evaluation.verdicts.map(v => [v.key, v.status, v.consensusDigest])])).digest('hex')
        if (done.get(k) === fingerprint) continue
        const results = await attestRelease(components, {
          evaluation,
          claims,
          images: init.images,
          tag,
          identity,
          verifierId: init.verifierId ?? verifierIdOf(identity.keyId),
          policyUri: init.policyUri,
          policyDigest: init.policyDigest
        })
        out.push(...results)
        if (results.every(r => r.error === undefined)) done.set(k, fingerprint)
        else log.warn({ repository: a.repository, tag, errors: results.filter(r => r.error !== undefined).map(r => r.error) }, 'some targets were not attested')
      } catch (err) {
        log.warn({ err, tag }, 'attesting a release failed; retrying on the next pass')
      }
    }
    return out
  }

  function runOnce (): Promise<TargetAttestation[]> {
    if (running !== undefined) return running
    running = pass().finally(() => { running = undefined })
    return running
  }

  function schedule (): void {
    if (!started || closing) return
    timer = setTimeout(() => { void runOnce().finally(schedule) }, intervalMs)
    timer.unref()
  }

  return {
    start () {
      if (started) return
      started = true
      void runOnce().finally(schedule)
    },
    async stop () {
      closing = true
      if (timer !== undefined) clearTimeout(timer)
      if (debounce !== undefined) clearTimeout(debounce)
      timer = undefined
      await running?.catch(() => undefined)
    },
    poke () {
      if (!started || closing) return
      if (debounce !== undefined) clearTimeout(debounce)
      debounce = setTimeout(() => { debounce = undefined; void runOnce() }, debounceMs)
      debounce.unref()
    },
    runOnce
  }
}
