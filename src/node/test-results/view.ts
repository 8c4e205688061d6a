import type { TrustPolicy } from '../../protocol/policy.js'
import type { TestResult } from '../../protocol/test-result.js'
import type { Digest } from '../../protocol/types.js'

/** One smoke test result as `status --json` shows it beside a target's verdict. */
export interface TestResultSummary {
  variant: string
  platform: string
  keyId: string
  /** Operator name from the trust policy. */
  operator?: string
  result: 'PASSED' | 'FAILED'
  gpu: boolean
  command: string[]
  exitCode?: number
  /** The image it ran in. */
  manifestDigest: Digest
  /** Whether that image is the one the quorum agreed on: only then does the result speak for the release. */
  agreedImage: boolean
  finishedOn: string
}

/**
 * The trusted builders' smoke test results of a release's targets, the newest per builder and
 * target, in the targets' order, then by operator. Not votes: a verdict never reads them.
 */
export function summariseTestResults (targets: ReadonlyArray<{ variant: string, platform: string, consensusDigest?: Digest }>, results: ReadonlyArray<{ keyId: string, testResult: TestResult }>, policy: TrustPolicy): TestResultSummary[] {
  const out: TestResultSummary[] = []
  for (const t of targets) {
    const newest = new Map<string, TestResult>()
    for (const r of results) {
      const tr = r.testResult
      if (tr.target.variant !== t.variant || tr.target.platform !== t.platform || !policy.builderKeys.has(r.keyId)) continue
      const seen = newest.get(r.keyId)
      if (seen == null || seen.finishedOn < tr.finishedOn) newest.set(r.keyId, tr)
    }
    // By operator (else key), so the same results print the same way.
    const named = [...newest].map(([keyId, tr]) => ({ keyId, tr, operator: policy.builderById.get(keyId)?.operator }))
    named.sort((a, b) => (a.operator ?? a.keyId) < (b.operator ?? b.keyId) ? -1 : 1)
    for (const { keyId, tr, operator } of named) {
      out.push({
        variant: t.variant,
        platform: t.platform,
        keyId,
        ...(operator != null ? { operator } : {}),
        result: tr.result,
        gpu: tr.gpu,
        command: tr.command,
        ...(tr.exitCode != null ? { exitCode: tr.exitCode } : {}),
        manifestDigest: tr.manifestDigest,
        agreedImage: t.consensusDigest === tr.manifestDigest,
        finishedOn: tr.finishedOn
      })
    }
  }
  return out
}

/** The text section `status` prints under its table; empty when there are none. */
export function formatTestResults (summaries: readonly TestResultSummary[]): string {
  if (summaries.length === 0) return ''
  const lines = ['', 'smoke tests (in-toto Test Results, not votes):']
  for (const s of summaries) {
    const how = s.result === 'PASSED' ? 'PASSED' : `FAILED${s.exitCode != null ? ` (exit ${s.exitCode})` : ' (no exit in time)'}`
    const where = s.agreedImage ? 'on the agreed image' : `on another image (${s.manifestDigest.slice(0, 19)}…)`
    lines.push(`  ${s.variant} ${s.platform}: ${how}${s.gpu ? ' with GPU' : ''} by ${s.operator ?? s.keyId.slice(0, 12)} ${where}: ${s.command.join(' ')}`)
  }
  return lines.join('\n') + '\n'
}
