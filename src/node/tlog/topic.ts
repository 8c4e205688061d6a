import type { VerifiedCheckpoint } from '../../protocol/tlog/gossip.js'
import type { Logger } from '../logger.js'
import type { TopicHandler } from '../p2p/topics.js'
import type { Witness } from './witness.js'

/** Checkpoints and cosignatures of transparency logs: the witness checks and acts on them. */
export function checkpointsTopic (components: { witness: Witness, log: Logger }): TopicHandler<VerifiedCheckpoint> {
  const { witness, log } = components
  return {
    validate (data) {
      const c = witness.validate(data)
      return c.verdict === 'accept' ? { outcome: 'accept', value: c.checkpoint } : { outcome: c.verdict }
    },
    async deliver (checkpoint, data) {
      await witness.receive(data, checkpoint).catch((err: unknown) => { log.warn({ err }, 'a checkpoint message failed') })
    },
    // What was dropped is fetched from that peer soon (see witness.ts).
    throttled: (from) => { witness.throttled(from) }
  }
}
