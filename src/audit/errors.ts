import { NekoError } from '../protocol/errors.js'

/** The path given to audit is missing or not a directory. */
export class AuditRootError extends NekoError {
  override name = 'AuditRootError'
  override readonly code = 'ERR_AUDIT_ROOT'
  constructor (readonly root: string, message: string) {
    super(`${root}: ${message}`)
  }
}
