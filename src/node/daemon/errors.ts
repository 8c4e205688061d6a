import { NekoError } from '../../protocol/errors.js'

/** A signed message handed to the daemon (e.g. by `announce`) did not pass the node's checks. */
export class MessageRejectedError extends NekoError {
  override name = 'MessageRejectedError'
  override readonly code = 'ERR_MESSAGE_REJECTED'
  constructor (readonly reason: string) {
    super(`message rejected: ${reason}`)
  }
}

/** The HTTP feed was asked for but could not start. */
export class HttpUnavailableError extends NekoError {
  override name = 'HttpUnavailableError'
  override readonly code = 'ERR_HTTP_UNAVAILABLE'
}
