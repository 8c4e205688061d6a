import type { Envelope } from './dsse.js'
import { LimitError } from './errors.js'
import { LIMITS } from './limits.js'
import { decodeMessages, type DecodeManyOptions, type DecodedMessage } from './messages.js'

export interface ParsedBundle {
  entries: Array<{ line: number, message: DecodedMessage }>
  /** Lines that did not decode (bad JSON, bad signature, bad field), 1-based; never counted. */
  errors: Array<{ line: number, error: Error }>
}

export interface BundleOptions extends DecodeManyOptions {
  /** Defaults to `LIMITS.bundleLines`. */
  maxLines?: number
  /** Defaults to `LIMITS.bundleLineLength`. */
  maxLineLength?: number
}

/** Lines decoded at once (at most MAX_DECODE_BATCH). */
const BATCH = 256

export interface BundleSink {
  entry: (line: number, message: DecodedMessage) => void
  /** A line that did not decode (bad JSON, bad signature, bad field); never counted. */
  error: (line: number, error: Error) => void
}

/**
 * A bundle is JSON Lines: one DSSE envelope per line (UTF-8, `\n` or `\r\n`); blank lines
 * are skipped. A bad line is reported with its 1-based number and skipped, so one bad
 * message never hides the good ones; more lines than the limit fail the whole bundle.
 * Lines are decoded in batches (signatures first, then payloads) and handed to `sink` in
 * line order; nothing is kept here, so a caller that
 * keeps only what it needs holds no envelope. `text` may come already split at `\n` (a
 * caller that read every line once need not split it again); the array is not changed.
 */
export function decodeBundle (text: string | readonly string[], opts: BundleOptions, sink: BundleSink): void {
  const maxLines = opts.maxLines ?? LIMITS.bundleLines
  const maxLineLength = opts.maxLineLength ?? LIMITS.bundleLineLength
  const lines = typeof text === 'string' ? text.split('\n') : text
  const count = lines.length > 0 && lines[lines.length - 1] === '' ? lines.length - 1 : lines.length
  if (count > maxLines) throw new LimitError('bundle.lines', maxLines, count)
  const decode = { keys: opts.keys, allowEmbeddedKeys: opts.allowEmbeddedKeys, ids: opts.ids }
  let batch: string[] = []
  let numbers: number[] = []
  const flush = (): void => {
    const results = decodeMessages(batch, decode)
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!
      if (r.ok) sink.entry(numbers[i]!, r.message)
      else sink.error(numbers[i]!, r.error)
    }
    batch = []
    numbers = []
  }
  for (let i = 0; i < count; i++) {
    const line = i + 1
    const raw = lines[i]!
    const text = raw.charCodeAt(raw.length - 1) === 0x0d ? raw.slice(0, -1) : raw
    // An envelope line starts with its brace: only other lines need the blank test.
    if (text.charCodeAt(0) !== 0x7b && text.trim() === '') continue
    if (text.length > maxLineLength) {
      if (batch.length > 0) flush() // the lines before it first: the sink sees line order
      sink.error(line, new LimitError(`line ${line}`, maxLineLength, text.length))
      continue
    }
    batch.push(text)
    numbers.push(line)
    if (batch.length === BATCH) flush()
  }
  if (batch.length > 0) flush()
}

/** `decodeBundle` into lists: every decoded line, and every bad line in line order. */
export function parseBundle (text: string, opts: BundleOptions = {}): ParsedBundle {
  const out: ParsedBundle = { entries: [], errors: [] }
  decodeBundle(text, opts, {
    entry: (line, message) => { out.entries.push({ line, message }) },
    error: (line, error) => { out.errors.push({ line, error }) }
  })
  out.errors.sort((a, b) => a.line - b.line)
  return out
}

/** One compact JSON envelope per line, each line ending in `\n`. */
export function serializeBundle (envelopes: Envelope[]): string {
  return envelopes.map(e => JSON.stringify(e) + '\n').join('')
}
