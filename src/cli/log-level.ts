/** Levels `--log-level` accepts: pino's, from most to least verbose, and `silent`. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']

/**
 * `--log-level LEVEL` or `--log-level=LEVEL` anywhere before `--`; read from argv before
 * commander runs because loggers are made when modules load. A bad value is a usage error.
 */
export function logLevelFromArgv (argv: readonly string[]): string | { error: string } | undefined {
  let level: string | undefined
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--') break
    if (a === '--log-level') {
      const v = argv[i + 1]
      if (v == null) return { error: 'option \'--log-level <level>\' argument missing' }
      level = v
      i++
    } else if (a.startsWith('--log-level=')) {
      level = a.slice('--log-level='.length)
    }
  }
  if (level !== undefined && !LOG_LEVELS.includes(level)) {
    return { error: `option '--log-level <level>' argument '${level}' is invalid. Allowed choices are ${LOG_LEVELS.join(', ')}.` }
  }
  return level
}
