import type { Envelope } from './dsse.js'
import { LimitError } from './errors.js'
import { LIMITS } from './limits.js'
import { decodeMessages, type DecodeOptions, type DecodedMessage } from './messages.js'

export interface ParsedBundle {
  entries: Array<{ line: number, message: DecodedMessage }>
  /** Lines that did not decode (bad JSON, bad signature, bad field), 1-based; never counted. */
  errors: Array<{ line: number, error: Error }>
}

export interface BundleOptions extends DecodeOptions {
  /** Defaults to `LIMITS.bundleLines`. */
  maxLines?: number
  /** Defaults to `LIMITS.bundleLineLength`. */
  maxLineLength?: number
}

/** Lines decoded at once (at most MAX_DECODE_BATCH). */
const BATCH = 256

/**
 * A bundle is JSON Lines: one DSSE envelope per line (UTF-8, `\n` or `\r\n`); blank lines
 * are skipped. A bad line is reported with its 1-based number and skipped, so one bad
 * message never hides the good ones; more lines than the limit fail the whole bundle.
 */
export function parseBundle (text: string, opts: BundleOptions = {}): ParsedBundle {
  const maxLines = opts.maxLines ?? LIMITS.bundleLines
  const maxLineLength = opts.maxLineLength ?? LIMITS.bundleLineLength
  const lines = text.split('\n')
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  if (lines.length > maxLines) throw new LimitError('bundle.lines', maxLines, lines.length)
  const out: ParsedBundle = { entries: [], errors: [] }
  // Lines are decoded in batches (signatures first, then payloads), in line order.
  let batch: Array<{ line: number, text: string }> = []
  const flush = (): void => {
    const results = decodeMessages(batch.map(b => b.text), { keys: opts.keys, allowEmbeddedKeys: opts.allowEmbeddedKeys })
    results.forEach((r, i) => {
      const line = (batch[i] as { line: number }).line
      if (r.ok) out.entries.push({ line, message: r.message })
      else out.errors.push({ line, error: r.error })
    })
    batch = []
  }
  lines.forEach((raw, i) => {
    const line = i + 1
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (text.trim() === '') return
    if (text.length > maxLineLength) {
      out.errors.push({ line, error: new LimitError(`line ${line}`, maxLineLength, text.length) })
      return
    }
    batch.push({ line, text })
    if (batch.length === BATCH) flush()
  })
  if (batch.length > 0) flush()
  out.errors.sort((a, b) => a.line - b.line)
  return out
}

/** One compact JSON envelope per line, each line ending in `\n`. */
export function serializeBundle (envelopes: Envelope[]): string {
  return envelopes.map(e => JSON.stringify(e) + '\n').join('')
}
