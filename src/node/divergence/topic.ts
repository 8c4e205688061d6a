import type { Logger } from '../logger.js'
import { checkedTopic } from '../p2p/checked-gossip.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { ReportCheck, ReportGossip } from './gossip.js'

/** Divergence reports: checked against the policy, then stored (observers keep them as builders do). */
export function reportsTopic (components: { reports: ReportGossip, log: Logger }): TopicHandler<ReportCheck> {
  return checkedTopic({ gossip: components.reports, log: components.log }, 'divergence report')
}
