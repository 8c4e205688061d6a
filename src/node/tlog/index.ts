export { createTransparencyLog } from './log.js'
export type { InclusionAnswer, TransparencyLog, TransparencyLogComponents, TransparencyLogInit } from './types.js'
export { TlogPeerError, TlogStorageError } from './errors.js'
