import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Target } from '../../protocol/types.js'
import type { TestResult } from '../../protocol/test-result.js'
import type { ComponentLogger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { Store } from '../store/types.js'
import { createAgreedTestResults } from './agreed.js'
import { createTestResultGossip, ownTestResults, type TestResultCheck } from './index.js'
import { testResultsTopic } from './topic.js'

/** Smoke test results as a node wires them: their topic, this node's own held until agreement and served to peers that meet it. */
export interface NodeTestResults {
  topic: TopicHandler<TestResultCheck>
  /** A smoke test outcome of this node's rebuild: signed once the quorum agrees on its image. */
  hold: (testResult: TestResult) => Promise<void>
  /** A stored claim of `target`: the agreement a held result may wait on. */
  claimStored: (target: Target) => void
  /** This node's own newest results, for a peer that meets it (gossip sends each once). */
  own: (max: number) => Promise<Uint8Array[]>
}

export function createNodeTestResults (components: { store: Store, policy: () => TrustPolicy, identity: SigningIdentity, logger: ComponentLogger, publish: (data: Uint8Array) => Promise<unknown> }): NodeTestResults {
  const { store, policy, identity, publish } = components
  const log = components.logger.forComponent('test-results')
  const gossip = createTestResultGossip({ store, policy, log })
  const agreed = createAgreedTestResults({
    store,
    policy,
    identity,
    log,
    async publish (envelopeJson, testResult) {
      const data = Buffer.from(envelopeJson, 'utf8')
      await gossip.receive(data, { verdict: 'accept', keyId: identity.keyId, value: testResult })
      await publish(data)
    }
  })
  return {
    topic: testResultsTopic({ testResults: gossip, log }),
    hold: async (testResult) => { await agreed.hold(testResult) },
    claimStored: (target) => { void agreed.claimStored(target) },
    own: async (max) => await ownTestResults(store, identity.keyId, max)
  }
}
