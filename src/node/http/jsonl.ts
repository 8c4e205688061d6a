import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Store, StoredMessage } from '../store/types.js'

/** Messages read from the store per step of the stream: bounds memory whatever the store holds. */
const CHUNK = 500

export interface EnvelopeFilter {
  tag?: string | undefined
  repository?: string | undefined
  /** Key ids whose claims for a release are all served, whatever others sent (the policy's builders). */
  keys?: Iterable<string> | undefined
}

/**
 * One envelope per line, exactly as signed, so `neko-rebuilder verify` can check the whole
 * feed offline. Envelopes are re-serialised only when stored with line breaks (the signature
 * covers the payload, not the envelope's whitespace).
 */
function line (m: StoredMessage): string {
  const text = m.envelopeJson
  return (text.includes('\n') || text.includes('\r') ? JSON.stringify(JSON.parse(text)) : text) + '\n'
}

async function write (res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed) return false
  if (!res.write(chunk)) {
    // Back-pressure: a slow reader must not make the node buffer the whole store. The side
    // that loses the race is detached at once, or every backpressured write of a long feed
    // would leave a listener behind.
    const race = new AbortController()
    try {
      await Promise.race([once(res, 'drain', { signal: race.signal }), once(res, 'close', { signal: race.signal })])
    } finally {
      race.abort()
    }
  }
  return !res.destroyed
}

/**
 * A tag names a release: its announcements and every claim for the commits they announce
 * (claims need not carry the tag, which is an alias). Read through the release and commit
 * indexes, bounded by the store's own per-query limits.
 */
async function releaseMessages (store: Store, filter: EnvelopeFilter & { tag: string }): Promise<StoredMessage[]> {
  const annFilter: { tag: string, repository?: string } = { tag: filter.tag }
  if (filter.repository !== undefined) annFilter.repository = filter.repository
  const announcements = await store.announcements(annFilter)
  const byId = new Map<string, StoredMessage>()
  const commits = new Set<string>()
  for (const a of announcements) {
    byId.set(a.id, a)
    commits.add(JSON.stringify([a.announcement.repository, a.announcement.commit]))
  }
  const keys = [...filter.keys ?? []]
  for (const key of commits) {
    const [repository, commit] = JSON.parse(key) as [string, string]
    for (const c of await store.claimsForCommit(repository, commit, keys)) byId.set(c.id, c)
  }
  return [...byId.values()].sort((a, b) => a.cursor - b.cursor)
}

/** `extra` may add lines after each envelope's (the transparency log's inclusion evidence). */
export async function streamEnvelopes (store: Store, req: IncomingMessage, res: ServerResponse, filter: EnvelopeFilter, extra?: (m: StoredMessage) => Promise<string>): Promise<void> {
  res.statusCode = 200
  res.setHeader('Content-Type', 'application/jsonl; charset=utf-8')
  res.setHeader('Cache-Control', 'no-cache')
  res.setHeader('Content-Disposition', 'inline; filename="claims.intoto.jsonl"')
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  if (filter.tag !== undefined) {
    for (const m of await releaseMessages(store, { ...filter, tag: filter.tag })) {
      if (!await write(res, line(m) + (await extra?.(m) ?? ''))) return
    }
    res.end()
    return
  }
  let cursor = 0
  for (;;) {
    const page = await store.messagesSince(cursor, CHUNK, filter.repository !== undefined ? { repository: filter.repository } : undefined)
    let text = ''
    for (const m of page.items) text += line(m) + (await extra?.(m) ?? '')
    if (text !== '' && !await write(res, text)) return
    if (page.next <= cursor) break
    cursor = page.next
  }
  res.end()
}
