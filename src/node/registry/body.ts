import { createHash } from 'node:crypto'
import { LimitError } from '../../protocol/errors.js'

/**
 * Reads a response body into memory, refusing more than `limit` bytes: first by
 * Content-Length, then while streaming, since a registry or proxy may omit or lie about it.
 */
export async function readLimited (res: Response, limit: number, field: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > limit) {
    await res.body?.cancel().catch(() => {})
    throw new LimitError(field, limit, declared)
  }
  if (res.body == null) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = res.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > limit) {
      await reader.cancel().catch(() => {})
      throw new LimitError(field, limit, total)
    }
    chunks.push(value)
  }
  const out = new Uint8Array(total)
  let offset = 0
  for (const c of chunks) {
    out.set(c, offset)
    offset += c.byteLength
  }
  return out
}

/** `algorithm:hex` of `bytes`, with the algorithm of `like` (`sha256` or `sha512`), sha256 by default. */
export function digestOf (bytes: Uint8Array, like?: string): string {
  const algorithm = like?.startsWith('sha512:') === true ? 'sha512' : 'sha256'
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}
