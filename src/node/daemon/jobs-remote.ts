import { LimitError, ValidationError } from '../../protocol/errors.js'
import { NodeFetchError } from '../consensus/remote.js'
import type { JobsView } from './jobs.js'

/** A queue view is small: a few hundred jobs at most. */
const MAX_BYTES = 4 * 1024 * 1024

/** Reads a node's `/api/v1/jobs`. The answer is the node's own word: nothing in it is signed. */
export async function fetchJobsFromNode (nodeUrl: string, opts: { recent?: number, timeoutMs?: number } = {}): Promise<JobsView> {
  let url: URL
  try {
    url = new URL('/api/v1/jobs', nodeUrl)
  } catch {
    throw new ValidationError('--node', `not a URL: ${JSON.stringify(nodeUrl)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError('--node', 'must be an http or https URL')
  if (opts.recent != null) url.searchParams.set('limit', String(opts.recent))
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000), headers: { Accept: 'application/json' } })
  } catch (err) {
    throw new NodeFetchError(url.toString(), `unreachable: ${(err as Error).message}`, { cause: err })
  }
  const text = await res.text()
  if (text.length > MAX_BYTES) throw new LimitError('response', MAX_BYTES, text.length)
  if (!res.ok) throw new NodeFetchError(url.toString(), `HTTP ${res.status}${res.status === 404 ? ' (a node older than the jobs view, or no node at this URL)' : ''}`)
  let json: Partial<JobsView>
  try {
    json = JSON.parse(text) as Partial<JobsView>
  } catch {
    throw new NodeFetchError(url.toString(), 'the answer is not JSON')
  }
  if (!Array.isArray(json.queued) || !Array.isArray(json.running) || !Array.isArray(json.recent) || json.counts == null) {
    throw new NodeFetchError(url.toString(), 'the answer is not a jobs view (queued, running, recent, counts)')
  }
  return json as JobsView
}
