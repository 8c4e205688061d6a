import type { Logger } from '../logger.js'
import { checkedTopic } from '../p2p/checked-gossip.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { TestResultCheck, TestResultGossip } from './index.js'

/** Smoke test results: checked against the policy, then stored beside the verdicts (never votes). */
export function testResultsTopic (components: { testResults: TestResultGossip, log: Logger }): TopicHandler<TestResultCheck> {
  return checkedTopic({ gossip: components.testResults, log: components.log }, 'test result')
}
