import { LimitError, ValidationError } from '../../protocol/errors.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { verifyDivergenceReport, type DivergenceReport } from '../../protocol/triage.js'
import { NodeFetchError } from '../consensus/remote.js'

/**
 * A release's divergence reports from a node's `/api/v1/divergences`, each verified here
 * against the policy's builder keys: a report signed by anyone else is dropped, and the
 * node's word is never taken for what a report says.
 */
export async function fetchDivergencesFromNode (nodeUrl: string, policy: TrustPolicy, tag: string, repository?: string, opts: { maxBytes?: number, timeoutMs?: number } = {}): Promise<Array<{ keyId: string, report: DivergenceReport }>> {
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024
  let url: URL
  try {
    url = new URL('/api/v1/divergences', nodeUrl)
  } catch {
    throw new ValidationError('--node', `not a URL: ${JSON.stringify(nodeUrl)}`)
  }
  url.searchParams.set('tag', tag)
  url.searchParams.set('limit', '500')
  if (repository !== undefined) url.searchParams.set('repository', repository)
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000), headers: { Accept: 'application/json' } })
  } catch (err) {
    throw new NodeFetchError(url.toString(), `unreachable: ${(err as Error).message}`, { cause: err })
  }
  // A node from before divergence reports has no such route: nothing to show.
  if (res.status === 404) { await res.body?.cancel().catch(() => {}); return [] }
  if (!res.ok) { await res.body?.cancel().catch(() => {}); throw new NodeFetchError(url.toString(), `HTTP ${res.status}`) }
  const text = Buffer.from(await res.arrayBuffer())
  if (text.byteLength > maxBytes) throw new LimitError('response', maxBytes, text.byteLength)
  let body: unknown
  try { body = JSON.parse(text.toString('utf8')) } catch { throw new NodeFetchError(url.toString(), 'the answer is not JSON') }
  const items = (body as { items?: unknown }).items
  if (!Array.isArray(items)) throw new NodeFetchError(url.toString(), 'the answer has no items array')
  const out: Array<{ keyId: string, report: DivergenceReport }> = []
  for (const item of items) {
    try {
      out.push(verifyDivergenceReport((item as { envelope?: unknown }).envelope, { keys: policy.builderKeys }))
    } catch {
      // Unverifiable or untrusted: not shown.
    }
  }
  return out
}
