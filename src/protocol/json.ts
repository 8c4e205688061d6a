import { ValidationError } from './errors.js'

/**
 * JSON.parse that refuses an object with the same member name twice (I-JSON, RFC 7493 §2.3).
 * Signed payloads must mean one thing to every reader: JSON.parse keeps the last of two
 * equal names, other parsers the first, so a duplicate could make two readers see two
 * different digests under one signature.
 */
export function parseStrictJson (text: string, field: string): unknown {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new ValidationError(field, `not UTF-8 JSON (${(err as Error).message})`)
  }
  // Fast check: every ':' outside strings separates one member. Without a backslash in the
  // text, each string parses to exactly its characters, so the colons inside strings can be
  // counted on the parsed values; more colons in the text than that plus the members kept
  // means a member was dropped. Text with escapes gets the exact scan.
  let duplicate: { key: string, path: string } | undefined
  try {
    if (text.includes('\\') || countColons(text) !== tally(value)) duplicate = findDuplicate(text)
  } catch (err) {
    // Both walks recurse: nesting deep enough to exhaust the stack is no payload of ours.
    if (err instanceof RangeError) throw new ValidationError(field, 'nested too deeply')
    throw err
  }
  if (duplicate !== undefined) throw new ValidationError(duplicate.path === '' ? field : duplicate.path, `duplicate key ${JSON.stringify(duplicate.key)}`)
  return value
}

function countColons (s: string): number {
  let n = 0
  for (let i = s.indexOf(':'); i !== -1; i = s.indexOf(':', i + 1)) n++
  return n
}

/** Members of every object plus the colons inside every name and string value. */
function tally (v: unknown): number {
  if (typeof v === 'string') return countColons(v)
  if (typeof v !== 'object' || v === null) return 0
  let n = 0
  if (Array.isArray(v)) {
    for (const x of v) n += tally(x)
    return n
  }
  for (const k in v) {
    n += 1 + countColons(k) + tally((v as Record<string, unknown>)[k])
  }
  return n
}

/** The first repeated member name in valid JSON text, with the path of its object. */
function findDuplicate (text: string): { key: string, path: string } | undefined {
  let i = 0
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++
      else return
    }
  }
  const str = (): string => {
    const start = i
    i++ // opening quote
    for (;;) {
      const c = text.charCodeAt(i)
      if (c === 0x5c) i += 2
      else if (c === 0x22) break
      else i++
    }
    i++
    return JSON.parse(text.slice(start, i)) as string
  }
  const value = (path: string): { key: string, path: string } | undefined => {
    ws()
    const c = text.charCodeAt(i)
    if (c === 0x7b) { // {
      i++
      const seen = new Set<string>()
      ws()
      if (text.charCodeAt(i) === 0x7d) { i++; return undefined }
      for (;;) {
        ws()
        const key = str()
        if (seen.has(key)) return { key, path }
        seen.add(key)
        ws()
        i++ // :
        const found = value(path === '' ? key : `${path}.${key}`)
        if (found !== undefined) return found
        ws()
        if (text.charCodeAt(i++) === 0x7d) return undefined // } else ,
      }
    }
    if (c === 0x5b) { // [
      i++
      ws()
      if (text.charCodeAt(i) === 0x5d) { i++; return undefined }
      for (let n = 0; ; n++) {
        const found = value(`${path}[${n}]`)
        if (found !== undefined) return found
        ws()
        if (text.charCodeAt(i++) === 0x5d) return undefined // ] else ,
      }
    }
    if (c === 0x22) {
      str()
      return undefined
    }
    // A number, true, false or null: up to the next delimiter.
    while (i < text.length) {
      const d = text.charCodeAt(i)
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break
      i++
    }
    return undefined
  }
  return value('')
}
