import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { DecodedMessage } from '../../protocol/messages.js'
import type { Ingest, Judgement } from './types.js'

export interface IngestTopicComponents {
  ingest: Ingest
  log: Logger
  /** Told of a peer whose message was ignored over a rate (it holds the message: back-fill fetches it). */
  missed: (from: string) => void
  /** Told of each message stored from gossip, with the peer that delivered it. */
  delivered?: (message: DecodedMessage, from: string) => void
}

/** Announcements and claims: checked and stored by the ingest, one handler per topic. */
export function ingestTopic (components: IngestTopicComponents, topic: string): TopicHandler<Judgement> {
  const { ingest, log, missed, delivered } = components
  return {
    async validate (data, from) {
      const judgement = await ingest.validate(topic, data)
      if (judgement.throttled === true) missed(from)
      return judgement.verdict === 'accept' ? { outcome: 'accept', value: judgement } : { outcome: judgement.verdict }
    },
    async deliver (judgement, data, from) {
      try {
        await ingest.deliver(judgement, data)
        if (judgement.message != null) delivered?.(judgement.message, from)
      } catch (err) {
        log.warn({ err, topic }, 'storing a gossip message failed')
      }
    },
    throttled: missed
  }
}
