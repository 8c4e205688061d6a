import { TypedEventEmitter } from '@libp2p/interface'
import { decodeMessage, decodeMessages, MAX_DECODE_BATCH, type DecodedMessage, type DecodeResult } from '../../protocol/messages.js'
import { policyKeys } from '../../protocol/policy.js'
import { componentLog, type Logger } from '../logger.js'
import { createJudge, type Arrival } from './judge.js'
import type { Ingest, IngestComponents, IngestEvents, IngestInit, ItemOutcome, Judgement, Outcome } from './types.js'

/** Envelope bytes as the text the store keeps and the feed re-serves. */
function text (data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')
}

class NodeIngest extends TypedEventEmitter<IngestEvents> implements Ingest {
  private readonly components: IngestComponents
  private readonly log: Logger
  private readonly judge: ReturnType<typeof createJudge>
  /** Policy keys first, then a key the envelope embeds (judged against the policy afterwards). */
  private readonly decodeOptions: { keys: ReturnType<typeof policyKeys>, allowEmbeddedKeys: true }
  /** Each refused announcement is reported once, however often gossip offers it again. */
  private readonly refused = new Set<string>()

  constructor (components: IngestComponents, init: IngestInit) {
    super()
    this.components = components
    this.log = componentLog(components.logger, 'ingest')
    this.judge = createJudge({ ...components, log: this.log }, init)
    this.decodeOptions = { keys: policyKeys(components.policy), allowEmbeddedKeys: true }
  }

  async validate (topic: string, data: Uint8Array): Promise<Judgement> {
    return this.refuse(await this.judged('gossip', this.decodeOne(data), topic))
  }

  async deliver (judgement: Judgement, data: Uint8Array): Promise<Outcome> {
    if (judgement.verdict !== 'accept' || judgement.message == null) return judgement.verdict === 'reject' ? 'rejected' : 'duplicate'
    return await this.put(judgement.message, text(data))
  }

  async acceptPage (items: readonly Uint8Array[]): Promise<Outcome[]> {
    return (await this.acceptItems(items)).map(r => r.outcome)
  }

  async acceptItems (items: readonly Uint8Array[]): Promise<ItemOutcome[]> {
    const out: ItemOutcome[] = []
    const { policy } = this.components
    for (let start = 0; start < items.length; start += MAX_DECODE_BATCH) {
      const batch = items.slice(start, start + MAX_DECODE_BATCH)
      const decoded = decodeMessages(batch, this.decodeOptions)
      for (let i = 0; i < batch.length; i++) {
        const judgement = await this.judged('backfill', decoded[i] as DecodeResult)
        const m = judgement.message
        const trusted = m != null && (m.kind === 'announcement' ? policy.announcerKeys.has(m.keyId) : policy.builderKeys.has(m.keyId))
        out.push({ outcome: await this.settle(judgement, batch[i] as Uint8Array), trusted })
      }
    }
    return out
  }

  async accept (topic: string, data: Uint8Array): Promise<{ outcome: Outcome, judgement: Judgement }> {
    const judgement = await this.judged('local', this.decodeOne(data), topic)
    return { outcome: await this.settle(judgement, data), judgement }
  }

  async record (envelope: string | object): Promise<{ id: string, stored: boolean }> {
    const [one] = await this.recordMany([envelope])
    if (one === undefined) throw new Error('recordMany returned nothing for one envelope')
    return one
  }

  async recordMany (envelopes: ReadonlyArray<string | object>): Promise<Array<{ id: string, stored: boolean }>> {
    const texts = envelopes.map(e => typeof e === 'string' ? e : JSON.stringify(e))
    const out: Array<{ id: string, stored: boolean }> = []
    for (let start = 0; start < texts.length; start += MAX_DECODE_BATCH) {
      const batch = texts.slice(start, start + MAX_DECODE_BATCH)
      const decoded = decodeMessages(batch, { ...this.decodeOptions, ids: true })
      for (const r of decoded) if (!r.ok) throw r.error
      for (let i = 0; i < batch.length; i++) {
        const message = (decoded[i] as DecodeResult & { ok: true }).message
        out.push({ id: message.id, stored: await this.put(message, batch[i] as string) === 'stored' })
      }
    }
    return out
  }

  private decodeOne (data: Uint8Array): DecodeResult {
    try {
      return { ok: true, message: decodeMessage(data, this.decodeOptions) }
    } catch (err) {
      return { ok: false, error: err as Error }
    }
  }

  /** The judgement of a decode result; a decode error is the sender's, anything later a bug. */
  private async judged (arrival: Arrival, r: DecodeResult, topic?: string): Promise<Judgement> {
    if (!r.ok) return rejected(r.error)
    try {
      return await this.judge(arrival, topic, r.message)
    } catch (err) {
      return this.failed(err)
    }
  }

  private async settle (judgement: Judgement, data: Uint8Array): Promise<Outcome> {
    if (judgement.verdict === 'reject') this.log.debug({ reason: judgement.reason }, 'message rejected')
    return await this.deliver(judgement, data)
  }

  private async put (message: DecodedMessage, envelopeJson: string): Promise<Outcome> {
    const { store, policy, metrics } = this.components
    const log = this.log
    const r = await store.putMessage(message, envelopeJson)
    if (!r.stored) return 'duplicate'
    const m = r.message
    metrics?.claimStored(m.kind)
    if (m.kind === 'announcement') {
      log.info({ id: m.id, repository: m.announcement.repository, tag: m.announcement.tag, commit: m.announcement.commit }, 'announcement stored')
    } else {
      log.info({ id: m.id, keyId: m.keyId, trusted: policy.builderKeys.has(m.keyId), target: m.claim.target, cursor: m.cursor }, 'claim stored')
    }
    this.safeDispatchEvent('stored', { detail: m })
    return 'stored'
  }

  /** Gossip offers a refused announcement again and again: it is reported once. */
  private refuse (j: Judgement): Judgement {
    const m = j.message
    if (j.refused === true && m?.kind === 'announcement' && !this.refused.has(m.id)) {
      if (this.refused.size >= 1024) this.refused.clear()
      this.refused.add(m.id)
      this.log.warn({ id: m.id, repository: m.announcement.repository, tag: m.announcement.tag, keyId: m.keyId, reason: j.reason }, `announcement of ${m.announcement.tag} refused: ${j.reason ?? 'invalid'}`)
    }
    return j
  }

  /** A bug or an unexpected throw past the decode step: never let it through, never throw. */
  private failed (err: unknown): Judgement {
    this.log.warn({ err }, 'the ingest failed unexpectedly; rejecting')
    return { verdict: 'reject', reason: 'validator error' }
  }
}

function rejected (err: unknown): Judgement {
  return { verdict: 'reject', reason: `${(err as Error).name}: ${(err as Error).message}` }
}

export function createIngest (components: IngestComponents, init: IngestInit = {}): Ingest {
  return new NodeIngest(components, init)
}
