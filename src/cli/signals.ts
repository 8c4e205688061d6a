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

/**
 * A long-running node survives a write on a stream that closed underneath it. The stream muxer
 * (yamux) sends the frame that opens a new outbound stream from a microtask; when the
 * connection closes in between, that write throws `StreamStateError` where nothing can catch
 * it, and Node would end the process: a volunteer's node would stop because a peer left at the
 * wrong moment. Such an error concerns one dead stream: it is logged and the node carries on.
 * Any other uncaught exception or unhandled rejection is logged and then ends the process as
 * Node's default does (its stack on stderr, exit 1). Returns a function that removes the handler.
 */
export function surviveClosedStreamWrites (log: Logger): () => void {
  const handler = (err: unknown, origin: NodeJS.UncaughtExceptionOrigin): void => {
    if (err instanceof Error && err.name === 'StreamStateError') {
      log.warn({ err: err.message, origin }, 'a write on a stream that had closed was dropped')
      return
    }
    // Node's own way from here: the error and its stack on stderr, exit code 1.
    log.fatal({ err, origin }, 'uncaught error: exiting')
    off()
    process.nextTick(() => { throw err })
  }
  const off = (): void => { process.off('uncaughtException', handler) }
  process.on('uncaughtException', handler)
  return off
}
