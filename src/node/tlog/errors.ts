import { NekoError } from '../../protocol/errors.js'

/** The log's database could not be opened or read back consistently. */
export class TlogStorageError extends NekoError {
  override name = 'TlogStorageError'
  override readonly code = 'ERR_TLOG_STORAGE'
}
