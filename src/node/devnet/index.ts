/** A local demo network (`neko-rebuilder devnet`): nodes, engines and a fixture project of its own. */
export { runDevnet, devnetThreshold } from './devnet.js'
export type { DevnetInit, DevnetNodeView, DevnetResult } from './devnet.js'
export { createFixtureProject } from './fixture-project.js'
export type { FixtureProject, FixtureProjectInit, FixtureProjectOptions } from './fixture-project.js'
