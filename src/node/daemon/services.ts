import type { Logger } from '../logger.js'

/** A long-lived part of the node, started and stopped by the daemon from one ordered list. */
export interface Service {
  readonly name: string
  start: () => void | Promise<void>
  stop: () => void | Promise<void>
}

/** Starts each in order; a part that fails to start stops the node's start (its error is the caller's). */
export async function startServices (services: readonly Service[]): Promise<void> {
  for (const s of services) await s.start()
}

/** Stops each in reverse order; a part that fails to stop is logged, and the rest still stop. */
export async function stopServices (services: readonly Service[], log: Logger): Promise<void> {
  for (const s of [...services].reverse()) {
    try {
      await s.stop()
    } catch (err) {
      log.warn({ err, service: s.name }, `stopping the ${s.name} failed`)
    }
  }
}
