import { NekoError } from '../../protocol/errors.js'

/** Why a back-fill exchange failed; stable strings that callers may branch on. */
export type BackfillFailure =
  | 'too-many-items'
  | 'item-too-large'
  | 'response-too-large'
  | 'request-too-large'
  | 'bad-request'
  | 'bad-response'
  | 'busy'
  | 'timeout'
  | 'source-failed'
  | 'stream-closed'
  | 'dial-failed'

/**
 * A back-fill request or response broke the protocol or a limit. `reason` names what
 * went wrong; `remote` is true when the serving peer reported it in an error frame.
 */
export class BackfillError extends NekoError {
  override name = 'BackfillError'
  override readonly code = 'ERR_BACKFILL'
  constructor (readonly reason: BackfillFailure, message: string, readonly remote = false) {
    super(`back-fill ${reason}: ${message}`)
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

/** A log did not give a usable consistency proof: unreachable, too slow, refused or malformed. */
export class TlogProofError extends NekoError {
  override name = 'TlogProofError'
  override readonly code = 'ERR_TLOG_PROOF_EXCHANGE'
}

/** The node could not listen on a configured address (in use, not on this machine). */
export class ListenError extends NekoError {
  override name = 'ListenError'
  override readonly code = 'ERR_LISTEN'
}

/** Why a file manifest exchange failed; stable strings that callers may branch on. */
export type ManifestFailure =
  | 'not-found'
  | 'too-many-entries'
  | 'entry-too-large'
  | 'response-too-large'
  | 'request-too-large'
  | 'bad-request'
  | 'bad-response'
  | 'bad-signature'
  | 'busy'
  | 'timeout'
  | 'source-failed'
  | 'stream-closed'
  | 'dial-failed'

/**
 * A file manifest request or response broke the protocol or a limit. `reason` names what
 * went wrong; `remote` is true when the serving peer reported it in an error frame.
 */
export class ManifestExchangeError extends NekoError {
  override name = 'ManifestExchangeError'
  override readonly code = 'ERR_MANIFEST_EXCHANGE'
  constructor (readonly reason: ManifestFailure, message: string, readonly remote = false) {
    super(`file manifest ${reason}: ${message}`)
  }
}
