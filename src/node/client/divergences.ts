import type { TrustPolicy } from '../../protocol/policy.js'
import { verifyDivergenceReport, type DivergenceReport } from '../../protocol/divergence-report.js'
import type { DivergencesResponse } from '../http/api.js'
import { getFromNode, jsonFromNode, NodeFetchError } from './node-client.js'

/**
 * A release's divergence reports from a node's `/api/v1/divergences`, each verified here
 * against the policy's builder keys: a report signed by anyone else is dropped, and the
 * node's word is never taken for what a report says.
 */
export async function fetchDivergencesFromNode (nodeUrl: string, policy: TrustPolicy, tag: string, repository?: string, opts: { maxBytes?: number, timeoutMs?: number } = {}): Promise<Array<{ keyId: string, report: DivergenceReport }>> {
  const got = await getFromNode(nodeUrl, '/api/v1/divergences', {
    params: { tag, limit: '500', repository },
    accept: 'application/json',
    timeoutMs: opts.timeoutMs ?? 30_000,
    maxBytes: opts.maxBytes ?? 16 * 1024 * 1024,
    // A node from before divergence reports has no such route: nothing to show.
    missingOk: true
  })
  if (got === undefined) return []
  const items = (jsonFromNode(got) as Partial<DivergencesResponse> | null)?.items as unknown
  if (!Array.isArray(items)) throw new NodeFetchError(got.url, 'the answer has no items array')
  const out: Array<{ keyId: string, report: DivergenceReport }> = []
  for (const item of items) {
    try {
      out.push(verifyDivergenceReport((item as Partial<DivergencesResponse['items'][number]> | null)?.envelope, { keys: policy.builderKeys }))
    } catch {
      // Unverifiable or untrusted: not shown.
    }
  }
  return out
}
