import { NekoError } from '../../protocol/errors.js'

/** The scheduler was asked to work after it stopped. */
export class SchedulerStoppedError extends NekoError {
  override name = 'SchedulerStoppedError'
  override readonly code = 'ERR_SCHEDULER_STOPPED'
}

/** `jobs retry` named a target this node has no job for. */
export class JobNotFoundError extends NekoError {
  override name = 'JobNotFoundError'
  override readonly code = 'ERR_JOB_NOT_FOUND'
  constructor (readonly id: string) {
    super(`no job for ${id} on this node (\`neko-rebuilder jobs\` lists them)`)
  }
}

/** `jobs retry` named a job that is running, or finished with a signed claim. */
export class JobNotRetryableError extends NekoError {
  override name = 'JobNotRetryableError'
  override readonly code = 'ERR_JOB_NOT_RETRYABLE'
  constructor (readonly id: string, readonly state: string) {
    super(`the job for ${id} is ${state}: ${state === 'running' ? 'it is building now' : 'its claim is signed; a target is built once'}`)
  }
}
