import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { TestResultCheck, TestResultGossip } from './index.js'

/** Smoke test results: checked against the policy, then stored beside the verdicts (never votes). */
export function testResultsTopic (components: { testResults: TestResultGossip, log: Logger }): TopicHandler<TestResultCheck> {
  const { testResults, log } = components
  return {
    async validate (data) {
      const checked = await testResults.check(data)
      return checked.verdict === 'accept' ? { outcome: 'accept', value: checked } : { outcome: checked.verdict }
    },
    async deliver (checked, data) {
      await testResults.receive(data, checked).catch((err: unknown) => { log.warn({ err }, 'storing a test result failed') })
    }
  }
}
