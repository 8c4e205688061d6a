import { NekoError } from '../../protocol/errors.js'

/** The store is closed, or its database could not be opened (another process holds the lock). */
export class StoreClosedError extends NekoError {
  override name = 'StoreClosedError'
  override readonly code = 'ERR_STORE_CLOSED'
}

export class StoreOpenError extends NekoError {
  override name = 'StoreOpenError'
  override readonly code = 'ERR_STORE_OPEN'
  constructor (readonly path: string, cause: unknown) {
    super(`cannot open the store at ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}
