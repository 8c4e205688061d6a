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

/** The store is held by a running node (LevelDB allows one process); `hint` says what to do instead. */
export class StoreLockedError extends NekoError {
  override name = 'StoreLockedError'
  override readonly code = 'ERR_STORE_LOCKED'
  constructor (readonly path: string, hint = 'stop it, or use another data directory') {
    super(`the store at ${path} is locked by a running node; ${hint}`)
  }
}

/** LevelDB's refusal to open a store another process holds, wherever it sits in the cause chain. */
export function isLockError (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (code === 'LEVEL_LOCKED') return true
    if (e instanceof Error && /\block\b/i.test(e.message)) return true
  }
  return false
}
