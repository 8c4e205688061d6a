export { createIngest } from './ingest.js'
export type { Ingest, IngestComponents, IngestEvents, IngestInit, ItemOutcome, Judgement, Outcome, Verdict } from './types.js'
export { ingestTopic } from './topic.js'
export type { IngestTopicComponents } from './topic.js'
