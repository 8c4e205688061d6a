import { NekoError } from '../../protocol/errors.js'

/** The log's database could not be opened or read back consistently. */
export class TlogStorageError extends NekoError {
  override name = 'TlogStorageError'
  override readonly code = 'ERR_TLOG_STORAGE'
}

/** A log asked for a proof did not answer in time or answered with something that proves nothing. */
export class TlogPeerError extends NekoError {
  override name = 'TlogPeerError'
  override readonly code = 'ERR_TLOG_PEER'
}
