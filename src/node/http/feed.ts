import type { ConsensusService } from '../consensus/service.js'
import type { TargetConsensus } from '../consensus/types.js'
import type { Store, StoredMessage } from '../store/types.js'
import { HTTP_LIMITS } from './limits.js'
import { listReports, type StoredReport } from '../divergence/reports.js'

/** A JSON Feed 1.1 document (https://www.jsonfeed.org/version/1.1/). */
export interface JsonFeed {
  version: 'https://jsonfeed.org/version/1.1'
  title: string
  description: string
  home_page_url?: string
  feed_url?: string
  items: JsonFeedItem[]
}

export interface JsonFeedItem {
  id: string
  title: string
  content_text: string
  date_published: string
  url?: string
  tags?: string[]
}

function shortKey (keyId: string): string {
  return keyId.slice(0, 16)
}

function messageItem (m: StoredMessage, base: string | undefined): JsonFeedItem | undefined {
  if (m.kind === 'announcement') {
    const a = m.announcement
    const targets = a.targets.map(t => `${t.variant} ${t.platform}`).join(', ')
    return {
      id: `message:${m.id}`,
      title: `${a.repository} ${a.tag} announced`,
      content_text: `${shortKey(m.keyId)} announced ${a.repository} ${a.tag} at commit ${a.commit} (recipe ${a.recipe.name}); targets: ${targets}.`,
      date_published: m.receivedAt,
      tags: ['announcement', a.tag],
      ...(base !== undefined ? { url: `${base}/api/v1/consensus/${encodeURIComponent(a.tag)}?repository=${encodeURIComponent(a.repository)}` } : {})
    }
  }
  {
    const c = m.claim
    const t = c.target
    const what = `${t.repository} ${t.tag ?? t.commit.slice(0, 12)} ${t.variant} ${t.platform}`
    const outcome = c.result != null
      ? `rebuilt ${what}: manifest ${c.result.manifestDigest}`
      : `failed to rebuild ${what}: ${c.failure?.class ?? 'failure'}: ${c.failure?.message ?? ''}`
    return {
      id: `message:${m.id}`,
      title: `${c.result != null ? 'Rebuilt' : 'Rebuild failed'}: ${what}`,
      content_text: `${shortKey(m.keyId)} ${outcome}`,
      date_published: m.receivedAt,
      tags: ['claim', c.result != null ? 'success' : (c.failure?.class ?? 'failure')]
    }
  }
  return undefined
}

function verdictItem (repository: string, tag: string, t: TargetConsensus, date: string, base: string | undefined): JsonFeedItem {
  const reported = t.agreeing.length + t.dissenting.length + t.failed.length
  const lines = [`${repository} ${tag} ${t.variant} ${t.platform} is ${t.status}: ${t.agreeing.length} of ${reported} trusted builders agree (threshold ${t.threshold}).`]
  if (t.consensusDigest !== undefined) lines.push(`Consensus digest: ${t.consensusDigest}.`)
  for (const d of t.dissenting) lines.push(`Dissent from ${shortKey(d.keyId)}: ${d.digest ?? ''}${d.divergence?.index !== undefined ? `, first differing layer ${d.divergence.index}${d.divergence.step !== undefined ? ` (${d.divergence.step})` : ''}` : ''}.`)
  if (t.published.match !== 'unknown') lines.push(`Published digest ${t.published.match === 'yes' ? 'matches' : 'does not match'}.`)
  return {
    // A new id for every change of verdict, so feed readers see the change as a new item.
    id: `verdict:${t.key}:${t.status}:${t.consensusDigest ?? ''}:${t.agreeing.length}`,
    title: `${tag} ${t.variant} ${t.platform}: ${t.status}`,
    content_text: lines.join(' '),
    date_published: date,
    tags: ['verdict', t.status],
    ...(base !== undefined ? { url: `${base}/api/v1/consensus/${encodeURIComponent(tag)}?repository=${encodeURIComponent(repository)}` } : {})
  }
}

function divergenceItem (r: StoredReport, base: string | undefined): JsonFeedItem {
  const { report } = r
  const t = report.target
  const causes = report.causes.map(c => `${c.count} ${c.id}${c.steps[0] !== undefined ? ` (${c.steps[0]})` : ''}: fix ${c.fix}`)
  return {
    id: `divergence:${r.id}`,
    title: `Why builds differ: ${t.tag ?? t.commit.slice(0, 12)} ${t.variant} ${t.platform}`,
    content_text: `${shortKey(r.keyId)} compared its image ${report.a.manifestDigest} with ${shortKey(report.b.keyId)}'s ${report.b.manifestDigest}: ` +
      `${report.paths.total} differing path(s), ${report.paths.explained} with a known cause. ${causes.join('; ')}.`,
    date_published: report.createdAt,
    tags: ['divergence', ...report.causes.map(c => c.id)],
    ...(base !== undefined ? { url: `${base}/api/v1/divergences?repository=${encodeURIComponent(t.repository)}${t.tag !== undefined ? `&tag=${encodeURIComponent(t.tag)}` : ''}` } : {})
  }
}

/**
 * The newest messages this node stored, and the current verdict of every release they
 * touch, newest first. Reads only the tail of the cursor index and the releases' indexes.
 */
export async function buildJsonFeed (components: { store: Store, consensus: ConsensusService }, opts: { base?: string | undefined }): Promise<JsonFeed> {
  const { store, consensus } = components
  const tail = (await store.stats()).messages
  const from = Math.max(0, tail - HTTP_LIMITS.feedItems)
  const recent = (await store.messagesSince(from, HTTP_LIMITS.feedItems)).items
  const items: JsonFeedItem[] = []
  const releases = new Map<string, { repository: string, tag: string, date: string }>()
  for (const m of recent) {
    const item = messageItem(m, opts.base)
    if (item !== undefined) items.push(item)
    const { repository, tag } = m.kind === 'announcement' ? m.announcement : m.claim.target
    if (tag !== undefined) {
      const key = JSON.stringify([repository, tag])
      releases.set(key, { repository, tag, date: m.receivedAt })
    }
  }
  for (const r of [...releases.values()].slice(-HTTP_LIMITS.feedReleases)) {
    const c = await consensus.forTag(r.tag, { repository: r.repository }).catch(() => undefined)
    if (c === undefined) continue
    for (const t of c.targets) items.push(verdictItem(r.repository, r.tag, t, t.lastClaimAt ?? r.date, opts.base))
  }
  for (const r of await listReports(store, {}, HTTP_LIMITS.feedReleases)) items.push(divergenceItem(r, opts.base))
  items.sort((a, b) => b.date_published.localeCompare(a.date_published) || a.id.localeCompare(b.id))
  const feed: JsonFeed = {
    version: 'https://jsonfeed.org/version/1.1',
    title: 'neko-rebuilder: reproducibility of releases',
    description: 'Signed rebuild claims and quorum verdicts stored on this node.',
    items
  }
  if (opts.base !== undefined) {
    feed.home_page_url = `${opts.base}/`
    feed.feed_url = `${opts.base}/feed.json`
  }
  return feed
}
