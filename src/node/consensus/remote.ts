import { LimitError, NekoError, ValidationError } from '../../protocol/errors.js'
import { parseBundle } from '../../protocol/bundle.js'
import { policyKeys, type TrustPolicy } from '../../protocol/policy.js'
import type { StoredMessage } from '../store/types.js'

/** The node at `--node` could not be read. */
export class NodeFetchError extends NekoError {
  override name = 'NodeFetchError'
  override readonly code = 'ERR_NODE_FETCH'
  constructor (readonly url: string, reason: string, options?: ErrorOptions) {
    super(`${url}: ${reason}`, options)
  }
}

export interface RemoteReleaseInit {
  /** Whole response limit, bytes. Default 64 MiB. */
  maxBytes?: number
  /** Default 60 s. */
  timeoutMs?: number
}

export interface RemoteRelease {
  /** Every envelope that verified, as the store would hold it; `cursor` is the line number. */
  messages: StoredMessage[]
  /** Lines that did not verify or decode, with the reason; never counted. */
  rejected: Array<{ line: number, reason: string }>
}

/**
 * Fetches a release's signed messages from a node's `/claims.intoto.jsonl` and verifies
 * every envelope here, against this policy's keys (or a stranger's embedded key, so
 * untrusted claims can be shown as such). The node's own verdict is never read: a node can
 * only withhold claims, not forge them.
 */
export async function fetchReleaseFromNode (nodeUrl: string, policy: TrustPolicy, tag: string, repository?: string, init: RemoteReleaseInit = {}): Promise<RemoteRelease> {
  const maxBytes = init.maxBytes ?? 64 * 1024 * 1024
  let url: URL
  try {
    url = new URL('/claims.intoto.jsonl', nodeUrl)
  } catch {
    throw new ValidationError('--node', `not a URL: ${JSON.stringify(nodeUrl)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError('--node', 'must be an http or https URL')
  url.searchParams.set('tag', tag)
  if (repository !== undefined) url.searchParams.set('repository', repository)

  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(init.timeoutMs ?? 60_000), headers: { Accept: 'application/jsonl' } })
  } catch (err) {
    throw new NodeFetchError(url.toString(), `unreachable: ${(err as Error).message}`, { cause: err })
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {})
    throw new NodeFetchError(url.toString(), `HTTP ${res.status}`)
  }
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => {})
    throw new LimitError('response', maxBytes, declared)
  }

  // Read the whole body within the limit; the bundle parser then bounds lines and their length.
  const chunks: Uint8Array[] = []
  let received = 0
  try {
    for await (const chunk of res.body ?? []) {
      received += (chunk as Uint8Array).byteLength
      if (received > maxBytes) throw new LimitError('response', maxBytes, received)
      chunks.push(chunk as Uint8Array)
    }
  } catch (err) {
    if (err instanceof NekoError) throw err
    throw new NodeFetchError(url.toString(), `reading the response failed: ${(err as Error).message}`, { cause: err })
  }
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw new NodeFetchError(url.toString(), 'the response is not UTF-8')
  }
  const bundle = parseBundle(text, { keys: policyKeys(policy), allowEmbeddedKeys: true })
  const messages: StoredMessage[] = []
  const seen = new Set<string>()
  for (const { line, message: d } of bundle.entries) {
    if (seen.has(d.id)) continue
    seen.add(d.id)
    // A bundle carries no receipt times: the signed time of the message stands in for it.
    const signedAt = new Date(d.kind === 'claim' ? d.claim.finishedOn : d.announcement.announcedAt).toISOString()
    const base = { id: d.id, cursor: line, keyId: d.keyId, envelopeJson: JSON.stringify(d.envelope), receivedAt: signedAt }
    messages.push(d.kind === 'claim' ? { ...base, kind: 'claim', claim: d.claim } : { ...base, kind: 'announcement', announcement: d.announcement })
  }
  return {
    messages,
    rejected: bundle.errors.map(e => ({ line: e.line, reason: `${e.error.name}: ${e.error.message}` }))
  }
}
