import { NekoError } from '../../protocol/errors.js'

/**
 * Why a request/response exchange failed, whatever the protocol: what the shared stream
 * mechanism itself reports (exchange.ts). Stable strings that callers may branch on.
 */
export type ExchangeFailure =
  | 'response-too-large'
  | 'request-too-large'
  | 'bad-request'
  | 'bad-response'
  | 'busy'
  | 'timeout'
  | 'source-failed'
  | 'stream-closed'
  | 'dial-failed'

/** Why a back-fill exchange failed; stable strings that callers may branch on. */
export type BackfillFailure = ExchangeFailure | 'too-many-items' | 'item-too-large'

/**
 * A request/response exchange broke the protocol or a limit. `reason` names what went
 * wrong; `remote` is true when the serving peer reported it in an error frame.
 */
abstract class ExchangeError<R extends string> extends NekoError {
  constructor (protocol: string, readonly reason: R, message: string, readonly remote = false) {
    super(`${protocol} ${reason}: ${message}`)
  }
}

/** A back-fill request or response broke the protocol or a limit. */
export class BackfillError extends ExchangeError<BackfillFailure> {
  override name = 'BackfillError'
  override readonly code = 'ERR_BACKFILL'
  constructor (reason: BackfillFailure, message: string, remote = false) {
    super('back-fill', reason, message, remote)
  }
}

/** A hole-punch (DCUtR) request refused: the peer is penalised, or over the relay request rate. */
export class HolePunchRefusedError extends NekoError {
  override name = 'HolePunchRefusedError'
  override readonly code = 'ERR_HOLE_PUNCH_REFUSED'
  constructor (readonly peer: string, readonly reason: 'rate' | 'penalised') {
    super(`hole punch from ${peer} refused (${reason === 'rate' ? 'over the request rate' : 'penalised peer'})`)
  }
}

/** A local publish was refused (unknown topic, message too large, node not started). */
export class PublishError extends NekoError {
  override name = 'PublishError'
  override readonly code = 'ERR_PUBLISH'
}

/** A peer id or multiaddr string could not be parsed or dialled. */
export class DialError extends NekoError {
  override name = 'DialError'
  override readonly code = 'ERR_DIAL'
}

/** A key cannot serve as a libp2p identity (not Ed25519, not private). */
export class IdentityKeyError extends NekoError {
  override name = 'IdentityKeyError'
  override readonly code = 'ERR_IDENTITY_KEY'
}

/** Why a tlog exchange failed: the log's node could not be reached in time, or it answered with nothing usable. */
export type TlogExchangeFailure = 'unreachable' | 'refused'

/** A log did not give a usable consistency proof (or checkpoint): unreachable, too slow, refused or malformed. */
export class TlogProofError extends NekoError {
  override name = 'TlogProofError'
  override readonly code: string = 'ERR_TLOG_PROOF_EXCHANGE'
  constructor (message: string, readonly failure: TlogExchangeFailure = 'refused') {
    super(message)
  }
}

/** No address is known for the log's node (not connected, no routing): nothing was asked. */
export class LogUnreachableError extends TlogProofError {
  override name = 'LogUnreachableError'
  override readonly code = 'ERR_TLOG_LOG_UNREACHABLE'
  constructor (message: string) {
    super(message, 'unreachable')
  }
}

/** The node could not listen on a configured address (in use, not on this machine). */
export class ListenError extends NekoError {
  override name = 'ListenError'
  override readonly code = 'ERR_LISTEN'
}

/** Why a file manifest exchange failed; stable strings that callers may branch on. */
export type ManifestFailure = ExchangeFailure | 'not-found' | 'too-many-entries' | 'entry-too-large' | 'bad-signature'

/** A file manifest request or response broke the protocol or a limit. */
export class ManifestExchangeError extends ExchangeError<ManifestFailure> {
  override name = 'ManifestExchangeError'
  override readonly code = 'ERR_MANIFEST_EXCHANGE'
  constructor (reason: ManifestFailure, message: string, remote = false) {
    super('file manifest', reason, message, remote)
  }
}

/** Why fetching a peer's statements (capabilities, divergence reports) failed; stable strings. */
export type StatementsFailure = ExchangeFailure | 'too-many-items' | 'item-too-large'

/** A statements request or response broke the protocol or a limit. */
export class StatementsError extends ExchangeError<StatementsFailure> {
  override name = 'StatementsError'
  override readonly code = 'ERR_STATEMENTS'
  constructor (reason: StatementsFailure, message: string, remote = false) {
    super('statements', reason, message, remote)
  }
}
