import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { Work } from './service.js'

/** Work notices: judged and kept (trusted ones) as they are checked; nothing more to deliver. */
export function noticesTopic (components: { work: Pick<Work, 'receive'>, log: Logger }): TopicHandler<undefined> {
  const { work, log } = components
  return {
    validate (data, from) {
      const n = work.receive(data)
      if (n.verdict === 'reject') log.debug({ reason: n.reason, from }, 'notice refused')
      return n.verdict === 'accept' ? { outcome: 'accept', value: undefined } : { outcome: n.verdict }
    },
    deliver: () => {}
  }
}
