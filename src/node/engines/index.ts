export { createLocalEngine } from './local-engine.js'
export type { LocalEngine, LocalEngineInit, LocalEngineComponents } from './local-engine.js'
export { EngineStartError } from './errors.js'
