import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { Ingest, Judgement } from './types.js'

export interface IngestTopicComponents {
  ingest: Ingest
  log: Logger
  /** Told of a peer whose message was ignored over a rate (it holds the message: back-fill fetches it). */
  missed: (from: string) => void
}

/** Announcements and claims: checked and stored by the ingest, one handler per topic. */
export function ingestTopic (components: IngestTopicComponents, topic: string): TopicHandler<Judgement> {
  const { ingest, log, missed } = components
  return {
    async validate (data, from) {
      const judgement = await ingest.validate(topic, data)
      if (judgement.throttled === true) missed(from)
      return judgement.verdict === 'accept' ? { outcome: 'accept', value: judgement } : { outcome: judgement.verdict }
    },
    async deliver (judgement, data) {
      try {
        await ingest.deliver(judgement, data)
      } catch (err) {
        log.warn({ err, topic }, 'storing a gossip message failed')
      }
    },
    throttled: missed
  }
}
