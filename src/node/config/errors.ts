import { NekoError } from '../../protocol/errors.js'

/** One or more settings are invalid; `problems` names each bad setting and where it came from. */
export class ConfigError extends NekoError {
  override name = 'ConfigError'
  override readonly code = 'ERR_CONFIG'
  constructor (readonly problems: Array<{ setting: string, source: string, message: string }>) {
    super(problems.map(p => `${p.setting} (${p.source}): ${p.message}`).join('; '))
  }
}
