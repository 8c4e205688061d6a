import type { HealthResponse } from '../http/api.js'
import { getFromNode, jsonFromNode } from './node-client.js'

/** A node's `/healthz`; undefined from a node without the route. Nothing in it is signed. */
export async function fetchHealthFromNode (nodeUrl: string, opts: { timeoutMs?: number } = {}): Promise<Partial<HealthResponse> | undefined> {
  const got = await getFromNode(nodeUrl, '/healthz', { accept: 'application/json', timeoutMs: opts.timeoutMs ?? 5_000, maxBytes: 64 * 1024, missingOk: true })
  if (got === undefined) return undefined
  const body = jsonFromNode(got)
  return typeof body === 'object' && body !== null ? body as Partial<HealthResponse> : {}
}
