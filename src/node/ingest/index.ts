export { createIngest } from './ingest.js'
export type { Ingest, IngestComponents, IngestEvents, IngestInit, Judgement, Outcome, Verdict } from './types.js'
