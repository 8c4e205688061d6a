import { NekoError } from '../../protocol/errors.js'

/** The scheduler was asked to work after it stopped. */
export class SchedulerStoppedError extends NekoError {
  override name = 'SchedulerStoppedError'
  override readonly code = 'ERR_SCHEDULER_STOPPED'
}
