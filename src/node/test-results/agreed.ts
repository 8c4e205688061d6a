import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { signTestResult, type TestResult } from '../../protocol/test-result.js'
import type { Target } from '../../protocol/types.js'
import { judge, judgedClaims } from '../consensus/evaluate.js'
import type { Logger } from '../logger.js'
import type { Store } from '../store/types.js'

export interface AgreedTestResultsComponents {
  store: Store
  policy: () => TrustPolicy
  identity: SigningIdentity
  log: Logger
  /** Stores and gossips a signed Test Result. */
  publish: (envelopeJson: string, testResult: TestResult) => Promise<void>
}

export interface AgreedTestResults {
  /** Keeps this node's outcome of a smoke test until its target is decided; publishes it at once if it is. */
  hold: (testResult: TestResult) => Promise<void>
  /** A claim of the target was stored: its verdict may have changed. */
  claimStored: (target: Target) => Promise<void>
}

/**
 * This node's smoke test results are signed and published only for the digest the quorum
 * agreed on: each waits (in the store's test result sub-store, so a restart keeps it; at most
 * STORE_LIMITS.maxWaitingTestResults, the oldest going first) until its target is reproducible,
 * then goes out if its image is the agreed one, and is dropped if it is not, or if the target
 * settled without an agreed image (unreproducible, failed, unsettled).
 */
export function createAgreedTestResults (components: AgreedTestResultsComponents): AgreedTestResults {
  const { store, log } = components
  const { waiting } = store.testResults
  // What waits is read, decided and released: one change at a time.
  let queue: Promise<unknown> = Promise.resolve()
  /**
   * Targets with a result waiting, in memory: every stored claim asks, and during a catch-up
   * that is thousands a minute; only those of a waiting target touch the store.
   */
  let waitingKeys: Set<string> | undefined
  const keysOf = async (): Promise<Set<string>> => {
    waitingKeys ??= await waiting.targets()
    return waitingKeys
  }
  const serial = async <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn)
    queue = run.catch(() => {})
    return await run
  }

  async function settle (key: string): Promise<void> {
    const held = await waiting.of(key)
    if (held.length === 0) return
    const { verdicts } = judge({ policy: components.policy(), announcements: [], claims: judgedClaims(await store.claimsForTarget(key)), claimedTargets: true })
    const verdict = verdicts.find(v => v.key === key)
    if (verdict == null || verdict.status === 'pending' || verdict.status === 'disputed') return
    for (const { testResult: t } of held) {
      if (verdict.status === 'reproducible' && verdict.consensusDigest === t.manifestDigest) {
        try {
          await components.publish(JSON.stringify(signTestResult(t, components.identity)), t)
          log.info({ target: key, result: t.result, manifest: t.manifestDigest }, 'smoke test result signed for the agreed image')
        } catch (err) {
          log.warn({ err, target: key }, 'signing or publishing the smoke test result failed')
        }
      } else {
        log.info({ target: key, status: verdict.status, manifest: t.manifestDigest, agreed: verdict.consensusDigest }, 'smoke test result dropped: its image is not the one the quorum agreed on')
      }
    }
    await waiting.release(held.map(h => h.id))
    waitingKeys = await waiting.targets()
  }

  return {
    async hold (testResult) {
      await serial(async () => {
        await waiting.hold(testResult)
        waitingKeys = await waiting.targets()
        await settle(targetKey(testResult.target))
      })
    },
    async claimStored (target) {
      const key = targetKey(target)
      if (waitingKeys != null && !waitingKeys.has(key)) return
      await serial(async () => { if ((await keysOf()).has(key)) await settle(key) }).catch((err: unknown) => { log.warn({ err }, 'checking held smoke test results failed') })
    }
  }
}
