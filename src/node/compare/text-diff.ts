import { structuredPatch } from 'diff'

/** Lines of unified diff shown per file: enough to see the pattern, short enough for a terminal. */
export const MAX_DIFF_LINES = 24
/** Characters of one line shown; a longer line is shown around its first difference. */
const SHOWN_CHARS = 200
/** Characters shown before a long line's first difference. */
const LEAD_CHARS = 60
/** Edit distance past which the line diff gives up (logs where every line moved). */
const MAX_EDIT = 300
/** Milliseconds the line diff may take per file. */
const MAX_MS = 100

/** What differs between two texts: a bounded unified diff to show, and the differing lines whole. */
export interface TextChanges {
  /** `--- a/PATH`, `+++ b/PATH`, hunks with one line of context; long lines shown around their first difference. */
  diff: string
  /** Every removed and added line, whole and without its `-`/`+`: what causes are judged on. */
  changed: string[]
}

function firstDifference (x: string, y: string): number {
  const n = Math.min(x.length, y.length)
  let i = 0
  while (i < n && x.charCodeAt(i) === y.charCodeAt(i)) i++
  return i
}

/** Text cut to SHOWN_CHARS around `at` (where it differs from its counterpart), marked with `…` where cut. */
function cut (text: string, at: number): string {
  if (text.length <= SHOWN_CHARS) return text
  const start = Math.max(0, Math.min(at - LEAD_CHARS, text.length - SHOWN_CHARS))
  return `${start > 0 ? '…' : ''}${text.slice(start, start + SHOWN_CHARS)}${start + SHOWN_CHARS < text.length ? '…' : ''}`
}

/**
 * A hunk's lines with long ones cut. Each run of removed lines is paired with the added lines
 * after it, so that a long line is shown where it differs from the line that replaced it.
 */
function showHunk (lines: string[]): string[] {
  const out: string[] = []
  // The `-`/`+`/` ` marker is kept; the text after it is cut.
  const show = (line: string, at: number): string => `${line.slice(0, 1)}${cut(line.slice(1), at)}`
  // `\ No newline at end of file` may follow a line of either run; it belongs to the run.
  const run = (from: number, marker: string): number => {
    let j = from
    while (j < lines.length && ((lines[j] as string).startsWith(marker) || (lines[j] as string).startsWith('\\'))) j++
    return j
  }
  for (let i = 0; i < lines.length;) {
    const line = lines[i] as string
    if (!line.startsWith('-')) { out.push(show(line, 0)); i++; continue }
    const j = run(i, '-')
    const k = run(j, '+')
    const removed = lines.slice(i, j).filter(l => l.startsWith('-'))
    const added = lines.slice(j, k).filter(l => l.startsWith('+'))
    const at = removed.map((r, n) => added[n] != null ? firstDifference(r.slice(1), (added[n] as string).slice(1)) : 0)
    let r = 0
    let a = 0
    for (const l of lines.slice(i, k)) {
      if (l.startsWith('-')) out.push(show(l, at[r++] ?? 0))
      else if (l.startsWith('+')) out.push(show(l, at[a++] ?? 0))
      else out.push(l)
    }
    i = k
  }
  return out
}

/**
 * The differences of two small text files, or `undefined` when they hold the same text.
 * `complete` false means the contents were cut at the capture limit; the diff says so.
 */
export function textChanges (path: string, a: Buffer, b: Buffer, complete = true): TextChanges | undefined {
  const sa = a.toString('utf8')
  const sb = b.toString('utf8')
  if (sa === sb) return undefined
  const out: string[] = [`--- a/${path}`, `+++ b/${path}`]
  const changed: string[] = []
  const patch = structuredPatch(`a/${path}`, `b/${path}`, sa, sb, '', '', { context: 1, maxEditLength: MAX_EDIT, timeout: MAX_MS })
  let shownLines = 0
  let total = 0
  if (patch != null) {
    for (const h of patch.hunks) {
      for (const l of h.lines) if (l.startsWith('-') || l.startsWith('+')) changed.push(l.slice(1))
      for (const line of [`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`, ...showHunk(h.lines)]) {
        total++
        if (shownLines < MAX_DIFF_LINES) { out.push(line); shownLines++ }
      }
    }
  } else {
    // Too many edits for a line diff: the lines that differ, pairwise.
    const la = sa.split('\n')
    const lb = sb.split('\n')
    const n = Math.max(la.length, lb.length)
    for (let i = 0; i < n; i++) {
      if (la[i] === lb[i]) continue
      const x = la[i] ?? ''
      const y = lb[i] ?? ''
      changed.push(x, y)
      total += 2
      if (shownLines < MAX_DIFF_LINES) {
        const at = firstDifference(x, y)
        out.push(`@@ line ${i + 1} @@`, `-${cut(x, at)}`, `+${cut(y, at)}`)
        shownLines += 3
      }
    }
  }
  if (total > shownLines) out.push(`… ${total - shownLines} more diff line(s)`)
  if (!complete) out.push('… (only the start of the files was compared)')
  return { diff: out.join('\n'), changed }
}

/** The bounded unified diff of two small text files, or `undefined` when they hold the same text. */
export function textDiff (path: string, a: Buffer, b: Buffer, complete = true): string | undefined {
  return textChanges(path, a, b, complete)?.diff
}
