import { getFromNode, jsonFromNode, NodeFetchError } from './node-client.js'
import type { JobsResponse } from '../http/api.js'

/** A queue view is small: a few hundred jobs at most. */
const MAX_BYTES = 4 * 1024 * 1024

/** Reads a node's `/api/v1/jobs`. The answer is the node's own word: nothing in it is signed. */
export async function fetchJobsFromNode (nodeUrl: string, opts: { recent?: number, timeoutMs?: number } = {}): Promise<JobsResponse> {
  const got = await getFromNode(nodeUrl, '/api/v1/jobs', {
    params: { limit: opts.recent != null ? String(opts.recent) : undefined },
    accept: 'application/json',
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxBytes: MAX_BYTES,
    notFoundHint: 'a node older than the jobs view, or no node at this URL'
  })
  const url = got.url
  const json = (jsonFromNode(got) ?? {}) as Partial<JobsResponse>
  if (!Array.isArray(json.queued) || !Array.isArray(json.running) || !Array.isArray(json.recent) || json.counts == null) {
    throw new NodeFetchError(url, 'the answer is not a jobs view (queued, running, recent, counts)')
  }
  return json as JobsResponse
}
