import { LimitError, NekoError, ValidationError } from '../../protocol/errors.js'

/** The node at `--node` could not be read. */
export class NodeFetchError extends NekoError {
  override name = 'NodeFetchError'
  override readonly code = 'ERR_NODE_FETCH'
  constructor (readonly url: string, reason: string, options?: ErrorOptions) {
    super(`${url}: ${reason}`, options)
  }
}

export interface NodeAnswer {
  url: string
  body: Buffer
}

export interface NodeGetInit {
  params?: Record<string, string | undefined>
  accept: string
  timeoutMs: number
  /** Largest body read; a longer one is refused as it streams in, not after. */
  maxBytes: number
  /** A 404 gives `undefined` instead of an error (a node from before the route). */
  missingOk?: boolean
  /** Said after `HTTP 404` when `missingOk` is not set. */
  notFoundHint?: string
}

/**
 * GETs `path` from the node at `nodeUrl` (what a user passed as `--node`: an http or https
 * URL) and returns the body, read within `maxBytes`. Every reader of a node's API goes through
 * here, so each bounds what it reads and names the URL in its errors the same way.
 */
export async function getFromNode (nodeUrl: string, path: string, init: NodeGetInit & { missingOk: true }): Promise<NodeAnswer | undefined>
export async function getFromNode (nodeUrl: string, path: string, init: NodeGetInit): Promise<NodeAnswer>
export async function getFromNode (nodeUrl: string, path: string, init: NodeGetInit): Promise<NodeAnswer | undefined> {
  let url: URL
  try {
    url = new URL(path, nodeUrl)
  } catch {
    throw new ValidationError('--node', `not a URL: ${JSON.stringify(nodeUrl)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError('--node', 'must be an http or https URL')
  for (const [k, v] of Object.entries(init.params ?? {})) if (v !== undefined) url.searchParams.set(k, v)
  const where = url.toString()
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(init.timeoutMs), headers: { Accept: init.accept } })
  } catch (err) {
    throw new NodeFetchError(where, `unreachable: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {})
    if (res.status === 404 && init.missingOk === true) return undefined
    throw new NodeFetchError(where, `HTTP ${res.status}${res.status === 404 && init.notFoundHint != null ? ` (${init.notFoundHint})` : ''}`)
  }
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > init.maxBytes) {
    await res.body?.cancel().catch(() => {})
    throw new LimitError('response', init.maxBytes, declared)
  }
  const chunks: Uint8Array[] = []
  let received = 0
  try {
    for await (const chunk of res.body ?? []) {
      received += (chunk as Uint8Array).byteLength
      if (received > init.maxBytes) throw new LimitError('response', init.maxBytes, received)
      chunks.push(chunk as Uint8Array)
    }
  } catch (err) {
    if (err instanceof NekoError) throw err
    throw new NodeFetchError(where, `reading the response failed: ${(err as Error).message}`, { cause: err })
  }
  return { url: where, body: Buffer.concat(chunks) }
}

/** The body as JSON, or a NodeFetchError naming the URL. */
export function jsonFromNode (got: NodeAnswer): unknown {
  try {
    return JSON.parse(got.body.toString('utf8'))
  } catch {
    throw new NodeFetchError(got.url, 'the answer is not JSON')
  }
}
