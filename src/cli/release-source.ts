import type { TestResult } from '../protocol/test-result.js'
import { fetchTestResultsFromNode, listTestResults } from '../node/test-results/index.js'
import type { TrustPolicy } from '../protocol/policy.js'
import type { DivergenceReport } from '../protocol/divergence-report.js'
import { fetchDivergencesFromNode, fetchHealthFromNode, fetchReleaseFromNode } from '../node/client/index.js'
import { storeReleaseSource, type ReleaseSource } from '../node/consensus/release.js'
import type { StoredAnnouncement, StoredClaim } from '../node/store/types.js'
import { reportWitnessing } from '../node/tlog/status.js'
import { listReports } from '../node/divergence/index.js'
import { cliLogger } from './logger.js'
import { openExistingStore } from './open-store.js'

/** The flags of the commands that read a release (`status`, `attest`). */
export interface StatusFlags {
  repo?: string
  node?: string
  dataDir?: string
  policy?: string
  json?: boolean
  vsa?: string
  key?: string
  registryCheck?: boolean
  image: string[]
  insecureRegistry?: boolean
}

/** A release source (`readRelease`) over a node's HTTP API (every envelope verified here) or a local store, with the divergence reports beside it. */
export interface CliReleaseSource extends ReleaseSource {
  reports: (repository: string) => Promise<Array<{ keyId: string, report: DivergenceReport }>>
  /** Smoke test results of the release's commit, verified (from a node) or stored (locally). */
  testResults: (repository: string, commit: string) => Promise<Array<{ keyId: string, testResult: TestResult }>>
  close: () => Promise<void>
}

/** `12 s`, `4 min`, `2 h`: a rough time left for a person. */
function roughly (seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min`
  return `${(seconds / 3600).toFixed(1)} h`
}

/**
 * One line when the node is still reading its peers' history (its `/healthz` says so): its
 * answer may lack claims it has not read yet. Best effort: a node that does not say, or does
 * not answer in time, gets no line.
 */
export async function catchUpNote (nodeUrl: string): Promise<string | undefined> {
  try {
    const c = (await fetchHealthFromNode(nodeUrl))?.catchUp as { behind?: unknown, etaSeconds?: unknown } | undefined
    if (c == null || typeof c.behind !== 'number' || !Number.isSafeInteger(c.behind) || c.behind <= 0) return undefined
    const eta = typeof c.etaSeconds === 'number' && Number.isFinite(c.etaSeconds) && c.etaSeconds >= 0 ? `, about ${roughly(c.etaSeconds)} left` : ''
    return `neko-rebuilder: ${nodeUrl} is catching up: ${c.behind.toLocaleString('en-US')} messages behind its peers${eta}; claims it has not read yet are missing from this answer\n`
  } catch {
    return undefined
  }
}

/** The release's messages from a node (verified here) or from a local store. */
export async function gather (tag: string, flags: StatusFlags, policy: TrustPolicy, dataDir: string): Promise<CliReleaseSource> {
  if (flags.node !== undefined) {
    const [remote, note] = await Promise.all([fetchReleaseFromNode(flags.node, policy, tag, flags.repo), catchUpNote(flags.node)])
    if (note !== undefined) process.stderr.write(note)
    for (const r of remote.rejected.slice(0, 20)) process.stderr.write(`neko-rebuilder: ignored line ${r.line} from ${flags.node}: ${r.reason}\n`)
    if (remote.rejected.length > 20) process.stderr.write(`neko-rebuilder: … and ${remote.rejected.length - 20} more rejected lines\n`)
    const announcements = remote.messages.filter((m): m is StoredAnnouncement => m.kind === 'announcement')
    const { claims, setAside } = await reportWitnessing(flags.node, policy, remote.messages.filter((m): m is StoredClaim => m.kind === 'claim'), (line) => process.stderr.write(line))
    return {
      where: flags.node,
      setAside,
      announcements: async (t, repository) => announcements.filter(m => m.announcement.tag === t && (repository === undefined || m.announcement.repository === repository)),
      claimsFor: async (repository, commit) => claims.filter(m => m.claim.target.repository === repository && m.claim.target.commit === commit),
      reports: async (repository) => await fetchDivergencesFromNode(flags.node as string, policy, tag, repository),
      testResults: async (repository, commit) => await fetchTestResultsFromNode(flags.node as string, policy, repository, commit),
      close: async () => {}
    }
  }
  const store = await openExistingStore(dataDir, { logger: cliLogger() })
  return {
    ...storeReleaseSource(store, policy, `the store of ${dataDir}`),
    // The local store's reports were verified when made or stored; only trusted signers count.
    reports: async (repository) => (await listReports(store, { repository, tag })).filter(r => policy.builderKeys.has(r.keyId)),
    testResults: async (repository, commit) => await listTestResults(store, { repository, commit }),
    close: async () => { await store.close() }
  }
}
