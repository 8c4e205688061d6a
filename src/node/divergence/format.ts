import type { DivergenceReport } from '../../protocol/divergence-report.js'

/**
 * Lines for `status`: per report, the causes most paths first, the number of files of each,
 * the Dockerfile step that made them and the fix, once per cause.
 */
export function formatReport (r: DivergenceReport, signer: string): string[] {
  const out = [`why builds differ (${signer} compared ${r.a.manifestDigest.slice(0, 19)}… with ${r.b.keyId.slice(0, 12)}'s ${r.b.manifestDigest.slice(0, 19)}…): ` +
    `${r.paths.total} path${r.paths.total === 1 ? '' : 's'}, ${r.paths.explained} with a known cause`]
  for (const c of r.causes) {
    out.push(`  ${c.id} × ${c.count}: ${c.summary}${c.paths.length > 0 ? ` (${c.paths.slice(0, 3).join(', ')}${c.count > 3 ? ', …' : ''})` : ''}`)
    for (const s of c.steps.slice(0, 2)) out.push(`    step: ${s.length > 160 ? s.slice(0, 159) + '…' : s}`)
    for (const e of (c.evidence ?? []).slice(0, 2)) out.push(`    seen: ${e.length > 160 ? e.slice(0, 159) + '…' : e}`)
    out.push(`    fix:  ${c.fix}`)
  }
  return out
}
