/** Maps offsets in a file's text to 1-based lines and columns. */
export interface LineIndex {
  position: (offset: number) => { line: number, column: number }
  /** Offset of the first character of a 1-based line. */
  lineStart: (line: number) => number
  /** The text of a 1-based line, without its newline. */
  lineText: (line: number) => string
}

export function createLineIndex (text: string): LineIndex {
  const starts = [0]
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1)
  const position = (offset: number): { line: number, column: number } => {
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((starts[mid] ?? 0) <= offset) lo = mid
      else hi = mid - 1
    }
    return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 }
  }
  const lineStart = (line: number): number => starts[Math.max(0, Math.min(line - 1, starts.length - 1))] ?? 0
  const lineText = (line: number): string => {
    const start = lineStart(line)
    const next = starts[line]
    return text.slice(start, next == null ? text.length : next - 1).replace(/\r$/, '')
  }
  return { position, lineStart, lineText }
}

/** One line of offending text, shortened so reports stay readable. */
export function snippet (text: string, max = 160): string {
  const one = text.replace(/\\\r?\n/g, ' ').replace(/\s+/g, ' ').trim()
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

/** Code-point order, the same on every machine and locale, so reports are stable. */
export function compareText (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
