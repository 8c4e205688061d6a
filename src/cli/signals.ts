import type { Logger } from '../node/logger.js'

/**
 * SIGINT/SIGTERM stop the node cleanly (the running build is aborted, p2p stops, the store
 * closes); a second signal while stopping forces the exit. Returns a function that removes
 * the handlers.
 */
export function onShutdownSignals (stop: (signal: NodeJS.Signals) => Promise<void>, log: Logger): () => void {
  let stopping = false
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(130)
    }
    stopping = true
    log.info({ signal }, 'stopping (send the signal again to force)')
    stop(signal).catch((err: unknown) => {
      log.error({ err }, 'clean stop failed')
      process.exitCode = 2
    })
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return () => {
    process.off('SIGINT', handler)
    process.off('SIGTERM', handler)
  }
}
