import { NekoError } from '../../protocol/errors.js'

/** A node's own Docker engine (a separate dockerd) could not be started; the message says what to change. */
export class EngineStartError extends NekoError {
  override name = 'EngineStartError'
  override readonly code = 'ERR_ENGINE_START'
}
