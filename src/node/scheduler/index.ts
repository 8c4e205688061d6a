export { createScheduler, formatDuration, type Scheduler, type SchedulerComponents } from './scheduler.js'
export { SchedulerStoppedError } from './errors.js'
export { canBuildTarget, builtinRecipe } from './requirements.js'
export type { RebuildRequest, RunningBuild, SchedulerInit, SchedulerRebuilder } from './types.js'
