/** One JSON value that differs between two documents, at its path (`a.b[2].c`). */
export interface JsonChange {
  path: string
  a: unknown
  b: unknown
}

/** Differences reported at most; past it the comparison stops. */
export const MAX_JSON_CHANGES = 100
/** Nesting followed at most; deeper values are compared whole (a hostile file cannot exhaust the stack). */
const MAX_DEPTH = 64

const isObject = (v: unknown): v is Record<string, unknown> => v != null && typeof v === 'object' && !Array.isArray(v)

/**
 * The values where two parsed JSON documents differ, with both sides: objects key by key
 * (sorted), arrays of equal length element by element, anything else whole. Linear in the size
 * of the documents and bounded in the number of changes, so a one-line JSON file of megabytes
 * is compared by its keys rather than as one line of text.
 */
export function jsonChanges (a: unknown, b: unknown, max = MAX_JSON_CHANGES): JsonChange[] {
  const out: JsonChange[] = []
  // A value's path is spelled only when it differs: most of a large document is equal.
  interface At { parent: At | undefined, key: string | number }
  const spell = (at: At | undefined): string => {
    if (at == null) return ''
    const up = spell(at.parent)
    return typeof at.key === 'number' ? `${up}[${at.key}]` : up === '' ? at.key : `${up}.${at.key}`
  }
  const walk = (x: unknown, y: unknown, at: At | undefined, depth: number): void => {
    if (out.length >= max || Object.is(x, y)) return
    if (depth < MAX_DEPTH && Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
      for (let i = 0; i < x.length && out.length < max; i++) {
        const xi: unknown = x[i]
        const yi: unknown = y[i]
        if (!Object.is(xi, yi)) walk(xi, yi, { parent: at, key: i }, depth + 1)
      }
      return
    }
    if (depth < MAX_DEPTH && isObject(x) && isObject(y)) {
      const kx = Object.keys(x)
      const ky = Object.keys(y)
      // The same keys in the same order (the usual case): no union to build.
      const same = kx.length === ky.length && kx.every((k, i) => k === ky[i])
      for (const k of (same ? kx : [...new Set([...kx, ...ky])]).sort()) {
        if (out.length >= max) return
        const xk = x[k]
        const yk = y[k]
        if (!Object.is(xk, yk)) walk(xk, yk, { parent: at, key: k }, depth + 1)
      }
      return
    }
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      const path = spell(at)
      out.push({ path: path === '' ? '(root)' : path, a: x, b: y })
    }
  }
  walk(a, b, undefined, 0)
  return out
}

/** Bytes of a file parsed as JSON at most: larger files are compared as text. */
export const MAX_JSON_BYTES = 4 * 1024 * 1024

/** The document in `text` when it is one JSON object or array; undefined otherwise. */
export function parseJsonDocument (text: string): unknown {
  const t = text.trimStart()
  if (text.length > MAX_JSON_BYTES || (!t.startsWith('{') && !t.startsWith('['))) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}
