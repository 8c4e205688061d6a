import { NekoError } from '../../protocol/errors.js'

/** A signed message handed to the daemon (e.g. by `announce`) did not pass the node's checks. */
export class MessageRejectedError extends NekoError {
  override name = 'MessageRejectedError'
  override readonly code = 'ERR_MESSAGE_REJECTED'
  constructor (readonly reason: string) {
    super(`message rejected: ${reason}`)
  }
}
