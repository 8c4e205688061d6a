import type { DivergenceReport } from '../../protocol/divergence-report.js'
import type { JobsView } from '../scheduler/jobs-view.js'

/**
 * The JSON bodies of the node API's routes, as the routes emit them and the node client
 * (src/node/client) reads them: one definition for both sides.
 */

/** What `/healthz` says of a node still reading its peers' history. */
export interface CatchUp {
  /** Messages its peers hold that it has not read yet (the median over peers). */
  behind: number
  /** Messages read per second lately. */
  perSecond: number
  /** Expected seconds left; null when nothing moves. */
  etaSeconds: number | null
}

/** `/healthz` */
export interface HealthResponse {
  status: 'ok'
  messages: number
  claims: number
  announcements: number
  catchUp?: CatchUp
}

/** `/api/v1/divergences`: the signed envelope beside what the node read from it (a reader verifies the envelope). */
export interface DivergencesResponse {
  items: Array<{ id: string, keyId: string, report: DivergenceReport, envelope: unknown }>
}

/** `/api/v1/jobs` */
export type JobsResponse = JobsView
