import type { Job } from '../node/store/types.js'
import type { JobsView } from '../node/scheduler/jobs-view.js'

function target (j: Job): string {
  const t = j.target
  return `${t.tag ?? t.commit.slice(0, 12)} ${t.variant} ${t.platform}`
}

/** The queue as a person reads it: running builds first, then what waits, then what finished. */
export function formatJobs (view: JobsView, now = Date.now()): string {
  const c = view.counts
  const out: string[] = [`${c.running} running, ${c.queued} queued, ${c.done} done, ${c.failed} failed, ${c.refused} refused, ${c.broken ?? 0} broken${(c.covered ?? 0) > 0 ? `, ${c.covered} covered by others` : ''}`]
  // A node older than the host view sends none.
  const host = view.host
  if (host?.state === 'broken') {
    out.push('', `HOST BROKEN since ${host.since}: building and signing nothing`, `  ${host.reason}`, `  fix the host, then: neko-rebuilder jobs retry '${host.job}'`)
  }
  // A node older than shared work sends none.
  const lapsed = view.lapsedTakers ?? []
  if (lapsed.length > 0) out.push('', 'TAKERS WHOSE NOTICES EXPIRE WITHOUT A CLAIM')
  for (const l of lapsed) out.push(`  ${l.name ?? l.keyId.slice(0, 16)}  ${l.lapsed} lapsed, last ${l.lastTarget} at ${l.lastExpiredAt}`)
  if (view.running.length > 0) out.push('', 'RUNNING')
  for (const r of view.running) {
    out.push(`  ${target(r.job)}  ${r.elapsed}  ${r.phase ?? 'starting'}${r.step != null ? `: ${r.step}` : ''}`)
    if (r.logPath != null) out.push(`    log ${r.logPath}`)
  }
  if (view.queued.length > 0) out.push('', 'QUEUED')
  for (const j of view.queued) {
    const wait = j.notBefore != null && j.notBefore > now ? `  retry in ${Math.ceil((j.notBefore - now) / 1000)} s (${j.lastError ?? ''})` : ''
    out.push(`  ${target(j)}${wait}`)
  }
  if (view.recent.length > 0) out.push('', 'RECENT')
  for (const j of view.recent) {
    out.push(`  ${j.state.padEnd(7)} ${target(j)}  ${j.updatedAt}${j.lastError != null ? `  ${j.lastError}` : ''}`)
    if (j.state === 'broken') out.push(`    retry: neko-rebuilder jobs retry '${j.id}'`)
  }
  return out.join('\n') + '\n'
}
