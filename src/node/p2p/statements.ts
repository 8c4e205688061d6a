import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LIMITS } from '../../protocol/limits.js'
import { TEST_RESULT_LIMITS } from '../../protocol/test-result.js'
import { REPORT_ENVELOPE_BYTES } from '../../protocol/divergence-report.js'
import type { Logger } from '../logger.js'
import { StatementsError, type StatementsFailure } from './errors.js'
import { createExchangeHandler, encodeJson, exchangeLimits, framed, parseControl, parseRequestObject, requestExchange, type ExchangeLimits } from './exchange.js'

/**
 * `/neko-rebuilder/statements/1.0.0` (docs/network.md, "Statements"): what gossip sends once,
 * when it changes, and never repeats on a timer, fetched from a peer when a node meets it: the
 * capabilities statements the peer holds (its own first), the newest divergence reports it
 * keeps, and its own newest smoke test results. So a node that joins late learns them from its first peers, not at the next
 * rebroadcast, and the idle network carries none of them.
 *
 * Request: `{}` as JSON. Response: CAPABILITIES frames (type 0), REPORT frames (type 1) and
 * TEST RESULT frames (type 4), each one signed envelope as gossiped, then END (type 2, `{}`); or
 * ERROR (type 3). The receiver
 * checks every item as it checks gossip.
 */
export const STATEMENTS_PROTOCOL = '/neko-rebuilder/statements/1.0.0'

const FRAME = { capabilities: 0, report: 1, end: 2, error: 3, testResult: 4 } as const

export interface StatementsLimits extends ExchangeLimits {
  maxStatements: number
  maxReports: number
  maxTestResults: number
  /** Sum of item bytes in one answer. */
  maxResponseBytes: number
}

export const STATEMENTS_DEFAULTS: StatementsLimits = {
  /** The builder table holds this many statements. */
  maxStatements: 256,
  /** The newest reports: enough for the last releases' divergent targets. */
  maxReports: 64,
  /** The server's own newest: one per target of the last releases it tested. */
  maxTestResults: 64,
  maxResponseBytes: 4 * 1024 * 1024,
  maxRequestBytes: 64,
  maxConcurrentStreams: 4,
  maxStreamsPerPeer: 1,
  requestTimeoutMs: 2_000,
  timeoutMs: 10_000
}

/** What a node serves: signed envelopes as they were gossiped, newest (and own) first. */
export type StatementsSource = () => Promise<{ capabilities: Uint8Array[], reports: Uint8Array[], testResults?: Uint8Array[] }>

export interface Statements { capabilities: Uint8Array[], reports: Uint8Array[], testResults: Uint8Array[] }

export function statementsLimits (init: Partial<StatementsLimits> = {}): StatementsLimits {
  return exchangeLimits('statements', STATEMENTS_DEFAULTS, init)
}

const fail = (reason: StatementsFailure | string, message: string, remote = false): StatementsError => new StatementsError(reason as StatementsFailure, message, remote)

export function createStatementsHandler (components: { source: StatementsSource, log: Logger }, limits: StatementsLimits): ReturnType<typeof createExchangeHandler> {
  const { source, log } = components
  return createExchangeHandler<Record<string, unknown>, StatementsFailure>({
    label: 'statements',
    errorFrame: FRAME.error,
    limits,
    log,
    parse: parseRequestObject,
    async answer (_req, reply) {
      let held: Awaited<ReturnType<StatementsSource>>
      try {
        held = await source()
      } catch (err) {
        await reply.refuse('source-failed', (err as Error).message)
        return
      }
      let bytes = 0
      const send = async (type: number, items: Uint8Array[], max: number, maxItem: number): Promise<void> => {
        for (const item of items.slice(0, max)) {
          if (item.byteLength > maxItem || bytes + item.byteLength > limits.maxResponseBytes) continue
          bytes += item.byteLength
          await reply.write(framed(type, item))
        }
      }
      await send(FRAME.capabilities, held.capabilities, limits.maxStatements, LIMITS.envelopeBytes)
      await send(FRAME.report, held.reports, limits.maxReports, REPORT_ENVELOPE_BYTES)
      await send(FRAME.testResult, held.testResults ?? [], limits.maxTestResults, TEST_RESULT_LIMITS.envelopeBytes)
      await reply.end(encodeJson(FRAME.end, {}))
    }
  })
}

/** Fetches what `target` holds; every count and size is bounded before an item is kept. Throws StatementsError. */
export async function requestStatements (libp2p: Libp2p, target: PeerId | Multiaddr, limits: StatementsLimits): Promise<Statements> {
  const got: Statements = { capabilities: [], reports: [], testResults: [] }
  let bytes = 0
  return await requestExchange<Statements, StatementsFailure>(libp2p, target, {}, {
    protocol: STATEMENTS_PROTOCOL,
    timeoutMs: limits.timeoutMs,
    maxBodyBytes: Math.max(LIMITS.envelopeBytes, REPORT_ENVELOPE_BYTES),
    errorFrame: FRAME.error,
    remoteReasons: new Set(['bad-request', 'request-too-large', 'busy', 'source-failed']),
    fail,
    oversize: { reason: 'item-too-large', message: 'an item exceeds the envelope limit' }
  }, (type, body) => {
    if (type === FRAME.end) {
      parseControl(body, fail)
      return got
    }
    bytes += body.byteLength
    if (bytes > limits.maxResponseBytes) throw fail('response-too-large', `answer exceeds ${limits.maxResponseBytes} bytes`)
    if (type === FRAME.capabilities) {
      if (body.byteLength > LIMITS.envelopeBytes) throw fail('item-too-large', `a statement exceeds ${LIMITS.envelopeBytes} bytes`)
      if (got.capabilities.length >= limits.maxStatements) throw fail('too-many-items', `more than ${limits.maxStatements} statements`)
      got.capabilities.push(Uint8Array.from(body))
    } else if (type === FRAME.report) {
      if (body.byteLength > REPORT_ENVELOPE_BYTES) throw fail('item-too-large', `a report exceeds ${REPORT_ENVELOPE_BYTES} bytes`)
      if (got.reports.length >= limits.maxReports) throw fail('too-many-items', `more than ${limits.maxReports} reports`)
      got.reports.push(Uint8Array.from(body))
    } else if (type === FRAME.testResult) {
      if (body.byteLength > TEST_RESULT_LIMITS.envelopeBytes) throw fail('item-too-large', `a test result exceeds ${TEST_RESULT_LIMITS.envelopeBytes} bytes`)
      if (got.testResults.length >= limits.maxTestResults) throw fail('too-many-items', `more than ${limits.maxTestResults} test results`)
      got.testResults.push(Uint8Array.from(body))
    } else {
      throw fail('bad-response', `unknown frame type ${String(type)}`)
    }
    return undefined
  })
}
