import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

/**
 * Hands out one logger per component, all writing to the same sink with the same base fields
 * (js-libp2p's ComponentLogger): `components.logger.forComponent('scheduler')`. Made by the
 * entry point (a command, the devnet, a benchmark, a test) and passed down; no module makes
 * its own.
 */
export interface ComponentLogger {
  forComponent: (component: string) => Logger
  /** The same sink with more fields on every record: a node binds its name and peer id. */
  bind: (fields: Record<string, unknown>) => ComponentLogger
  /**
   * Resolves when every record so far is written: a command prints its result after this, so
   * that on a terminal (or with 2>&1) no record lands inside or after the result.
   */
  flush: () => Promise<void>
}

export interface LoggerInit {
  /** pino's level or `silent`; default `NEKO_LOG_LEVEL`, else `defaultLevel`. */
  level?: string
  /** The level when neither `level` nor `NEKO_LOG_LEVEL` says: `info`, or `warn` where a run prints its own progress. */
  defaultLevel?: string
  /** Default `NEKO_LOG_FORMAT`, else pretty on a terminal and JSON Lines otherwise. */
  format?: string
  /** Where JSON Lines go (stderr by default); a pretty logger always writes to stderr. */
  destination?: DestinationStream
}

/**
 * The logger of an entry point: readable on a terminal (pino-pretty), JSON Lines otherwise,
 * on stderr. `NEKO_LOG_LEVEL` and `NEKO_LOG_FORMAT=json|pretty` apply where `init` is silent.
 */
export function createLogger (init: LoggerInit = {}): ComponentLogger {
  const level = init.level ?? envOr('NEKO_LOG_LEVEL') ?? init.defaultLevel ?? 'info'
  const format = init.format ?? envOr('NEKO_LOG_FORMAT') ?? (process.stderr.isTTY ? 'pretty' : 'json')
  const options: LoggerOptions = { level, base: { pid: process.pid } }
  const root = level === 'silent'
    ? pino({ level })
    : format === 'pretty' && init.destination == null
      ? pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname', sync: true } } })
      // Written as they come, not later: a command's result on stdout then follows its records.
      : pino(options, init.destination ?? pino.destination({ dest: 2, sync: true }))
  return componentLogger(root)
}

/** Writes nothing: the default of a component made without a logger (a library user's, a test's). */
export function silentLogger (): ComponentLogger {
  return componentLogger(pino({ level: 'silent' }))
}

function componentLogger (root: Logger): ComponentLogger {
  return {
    forComponent: component => root.child({ component }),
    bind: fields => componentLogger(root.child(fields)),
    flush: async () => { await new Promise<void>(resolve => { root.flush(() => { resolve() }) }) }
  }
}

/** An empty variable counts as unset, as a shell's `NEKO_LOG_LEVEL= cmd` means. */
function envOr (name: string): string | undefined {
  const v = process.env[name]
  return v != null && v !== '' ? v : undefined
}

/** The components of a service that needs nothing but a logger; without one it is silent. */
export interface LoggerComponents {
  logger?: ComponentLogger
}

/** `component`'s logger from a service's components; a service made without one is silent. */
export function componentLog (logger: ComponentLogger | undefined, component: string): Logger {
  return (logger ?? silentLogger()).forComponent(component)
}
