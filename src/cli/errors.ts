import { NekoError } from '../protocol/errors.js'

/** A bad command line: an option value that is not allowed, options that do not go together (exit 3). */
export class UsageError extends NekoError {
  override name = 'UsageError'
  override readonly code = 'ERR_USAGE'
  constructor (readonly option: string, message: string) {
    super(`${option}: ${message}`)
  }
}

/** The user pressed Ctrl-C (exit 130). */
export class InterruptedError extends NekoError {
  override name = 'InterruptedError'
  override readonly code = 'ERR_INTERRUPTED'
  constructor () {
    super('interrupted')
  }
}
