/**
 * The node API's client: what `status`, `attest`, `jobs` and `tlog` read from a node at
 * `--node URL`, each answer bounded as it streams in and typed by the routes' own response
 * types (src/node/http/api.ts). Signed content is verified here, never taken on the node's word.
 */
export { getFromNode, jsonFromNode, NodeFetchError } from './node-client.js'
export type { NodeAnswer, NodeGetInit } from './node-client.js'
export { fetchReleaseFromNode } from './release.js'
export type { RemoteRelease, RemoteReleaseInit } from './release.js'
export { fetchDivergencesFromNode } from './divergences.js'
export { fetchJobsFromNode } from './jobs.js'
export { fetchHealthFromNode } from './health.js'
