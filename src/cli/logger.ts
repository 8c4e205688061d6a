import { createLogger, type ComponentLogger } from '../node/logger.js'

let made: ComponentLogger | undefined

/**
 * The command's logger, made on first use: the level of `--log-level` (main.ts puts it in
 * NEKO_LOG_LEVEL, so the flag wins), else `NEKO_LOG_LEVEL`, else info. A command that never
 * logs never makes one (no pretty-printing worker for `keygen`).
 */
export function cliLogger (): ComponentLogger {
  made ??= createLogger()
  return made
}

/** Waits until the command's log records are written, if it made a logger: its last word comes after them. */
export async function flushCliLogs (): Promise<void> {
  await made?.flush()
}
