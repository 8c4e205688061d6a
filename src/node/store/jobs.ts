import { ValidationError } from '../../protocol/errors.js'
import { checkKey, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'
import type { Job, JobState } from './types.js'

export const JOB_STATES: JobState[] = ['queued', 'running', 'done', 'failed', 'refused', 'broken', 'covered']

/** This node's rebuild jobs, one per target (`job` sublevel: job id → Job JSON). */
export class JobTable {
  private readonly jobs: Sublevel

  constructor (private readonly ctx: StoreContext) {
    this.jobs = ctx.sublevel('job')
  }

  async put (job: Job): Promise<void> {
    this.ctx.assertOpen()
    checkKey('job.id', job.id)
    if (!JOB_STATES.includes(job.state)) throw new ValidationError('job.state', `must be one of ${JOB_STATES.join(', ')}`)
    await this.ctx.write(async () => {
      await this.ctx.db.batch([{ type: 'put', sublevel: this.jobs, key: job.id, value: JSON.stringify(job) }], { sync: true })
    })
  }

  async get (id: string): Promise<Job | undefined> {
    this.ctx.assertOpen()
    if (typeof id !== 'string' || id.length === 0) return undefined
    return this.ctx.parse<Job>('job', id, await this.jobs.get(id))
  }

  async list (state?: JobState): Promise<Job[]> {
    this.ctx.assertOpen()
    const out: Job[] = []
    for await (const [key, value] of this.jobs.iterator({ limit: STORE_LIMITS.maxListing })) {
      const j = this.ctx.parse<Job>('job', key, value)
      if (j != null && (state == null || j.state === state)) out.push(j)
    }
    return out
  }

  async countByState (): Promise<Record<JobState, number>> {
    // From the one list of states: a new state is counted without a second edit here.
    const byState = Object.fromEntries(JOB_STATES.map(s => [s, 0])) as Record<JobState, number>
    for (const j of await this.list()) {
      if (j.state in byState) byState[j.state]++
    }
    return byState
  }
}
