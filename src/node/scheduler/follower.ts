import type { Follower } from '../follow/index.js'
import type { Logger } from '../logger.js'
import type { Scheduler } from './scheduler.js'

/**
 * The build queue as a follower of the stored announcements: its jobs are written before its
 * cursor moves past an announcement, so one stored just before a crash is queued after it.
 */
export function schedulerFollower (scheduler: Pick<Scheduler, 'enqueue'>, log: Logger): Follower {
  return {
    name: 'scheduler',
    kinds: ['announcement'],
    async apply (page) {
      for (const m of page) {
        // One announcement the scheduler cannot queue does not hold up those after it.
        await scheduler.enqueue(m).catch((err: unknown) => { log.warn({ err, id: m.id }, 'queueing an announced release failed') })
      }
    }
  }
}
