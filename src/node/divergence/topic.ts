import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { ReportCheck, ReportGossip } from './gossip.js'

/** Divergence reports: checked against the policy, then stored (observers keep them as builders do). */
export function reportsTopic (components: { reports: ReportGossip, log: Logger }): TopicHandler<ReportCheck> {
  const { reports, log } = components
  return {
    async validate (data) {
      const report = await reports.check(data)
      if (report.verdict === 'reject') log.info({ reason: report.reason, keyId: report.keyId }, 'divergence report refused')
      return report.verdict === 'accept' ? { outcome: 'accept', value: report } : { outcome: report.verdict }
    },
    async deliver (report, data) {
      await reports.receive(data, report).catch((err: unknown) => { log.warn({ err }, 'storing a divergence report failed') })
    }
  }
}
