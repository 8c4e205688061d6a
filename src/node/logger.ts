import { pino, type Logger, type LoggerOptions } from 'pino'

export type { Logger }

let root: Logger | undefined

/**
 * One root logger per process: readable on a terminal (pino-pretty), JSON Lines otherwise.
 * `NEKO_LOG_LEVEL` sets the level; `NEKO_LOG_FORMAT=json|pretty` overrides the choice.
 */
export function rootLogger (): Logger {
  if (root != null) return root
  const level = process.env.NEKO_LOG_LEVEL ?? (process.env.VITEST != null ? 'silent' : 'info')
  const format = process.env.NEKO_LOG_FORMAT ?? (process.stderr.isTTY ? 'pretty' : 'json')
  const options: LoggerOptions = { level, base: { pid: process.pid } }
  root = format === 'pretty'
    ? pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } } })
    : pino(options, pino.destination(2))
  return root
}

/** A child logger for one component, as libp2p does: `logger('scheduler')`. */
export function logger (component: string): Logger {
  return rootLogger().child({ component })
}
