export { createIngest } from './ingest.js'
export type { Ingest, IngestComponents, IngestEvents, IngestInit, ItemOutcome, Judgement, Outcome, Verdict } from './types.js'
