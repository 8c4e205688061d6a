import { structuredPatch } from 'diff'

/** Lines of unified diff shown per file: enough to see the pattern, short enough for a terminal. */
export const MAX_DIFF_LINES = 24
/** Edit distance past which the line diff gives up (logs where every line moved). */
const MAX_EDIT = 300
/** Milliseconds the line diff may take per file. */
const MAX_MS = 100

/**
 * A bounded unified diff of two small text files (`--- a/PATH`, `+++ b/PATH`, hunks with one
 * line of context), or `undefined` when they hold the same lines. `complete` false means
 * the contents were cut at the capture limit; the diff says so.
 */
export function textDiff (path: string, a: Buffer, b: Buffer, complete = true): string | undefined {
  const sa = a.toString('utf8')
  const sb = b.toString('utf8')
  if (sa === sb) return undefined
  const out: string[] = [`--- a/${path}`, `+++ b/${path}`]
  const patch = structuredPatch(`a/${path}`, `b/${path}`, sa, sb, '', '', { context: 1, maxEditLength: MAX_EDIT, timeout: MAX_MS })
  let shown = 0
  let total = 0
  if (patch != null) {
    for (const h of patch.hunks) {
      const header = `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`
      for (const line of [header, ...h.lines]) {
        total++
        if (shown < MAX_DIFF_LINES) { out.push(line.length > 200 ? `${line.slice(0, 200)}…` : line); shown++ }
      }
    }
  } else {
    // Too many edits for a line diff: show the first lines that differ, pairwise.
    const la = sa.split('\n')
    const lb = sb.split('\n')
    const n = Math.max(la.length, lb.length)
    for (let i = 0; i < n; i++) {
      if (la[i] === lb[i]) continue
      total += 2
      if (shown < MAX_DIFF_LINES) {
        out.push(`@@ line ${i + 1} @@`, `-${(la[i] ?? '').slice(0, 200)}`, `+${(lb[i] ?? '').slice(0, 200)}`)
        shown += 3
      }
    }
  }
  if (total > shown) out.push(`… ${total - shown} more diff line(s)`)
  if (!complete) out.push('… (only the start of the files was compared)')
  return out.join('\n')
}
