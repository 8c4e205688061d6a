import { NekoError } from '../../protocol/errors.js'

/** A signed message handed to the daemon (e.g. by `announce`) did not pass the node's checks. */
export class MessageRejectedError extends NekoError {
  override name = 'MessageRejectedError'
  override readonly code = 'ERR_MESSAGE_REJECTED'
  constructor (readonly reason: string) {
    super(`message rejected: ${reason}`)
  }
}

/** `announce --policy`: the key is not an announcer of that policy, so its nodes would refuse the announcement. */
export class AnnouncerNotTrustedError extends NekoError {
  override name = 'AnnouncerNotTrustedError'
  override readonly code = 'ERR_ANNOUNCER_NOT_TRUSTED'
  constructor (readonly keyId: string, policyFile: string) {
    super(`key ${keyId} is not an announcer of ${policyFile}: its nodes would refuse the announcement, so it was not sent (add the key's public.pem under "announcers")`)
  }
}
