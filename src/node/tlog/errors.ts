import { NekoError } from '../../protocol/errors.js'

/** The log's database could not be opened or read back consistently. */
export class TlogStorageError extends NekoError {
  override name = 'TlogStorageError'
  override readonly code = 'ERR_TLOG_STORAGE'
}

/** A node answered a request for a log's newest checkpoint with another log's. */
export class TlogFetchError extends NekoError {
  override name = 'TlogFetchError'
  override readonly code = 'ERR_TLOG_FETCH'
}

/** A configured witness URL, witness key or witnessed log key is unusable. */
export class TlogConfigError extends NekoError {
  override name = 'TlogConfigError'
  override readonly code = 'ERR_TLOG_CONFIG'
}
