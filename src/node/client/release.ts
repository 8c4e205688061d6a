import { parseBundle } from '../../protocol/bundle.js'
import { policyKeys, type TrustPolicy } from '../../protocol/policy.js'
import type { StoredMessage } from '../store/types.js'
import { getFromNode, NodeFetchError } from './node-client.js'

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
  const got = await getFromNode(nodeUrl, '/claims.intoto.jsonl', {
    params: { tag, repository },
    accept: 'application/jsonl',
    timeoutMs: init.timeoutMs ?? 60_000,
    // The whole body within the limit; the bundle parser then bounds lines and their length.
    maxBytes: init.maxBytes ?? 64 * 1024 * 1024
  })
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(got.body)
  } catch {
    throw new NodeFetchError(got.url, 'the response is not UTF-8')
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
