export { createScheduler, formatDuration, type Scheduler, type SchedulerComponents } from './scheduler.js'
export { JobNotFoundError, JobNotRetryableError, SchedulerStoppedError } from './errors.js'
export { canBuildTarget, builtinRecipe } from './requirements.js'
export type { HostHealth, RebuildRequest, RunningBuild, SchedulerInit, SchedulerRebuilder } from './types.js'
