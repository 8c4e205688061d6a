/**
 * C2SP tlog-checkpoint: the note text `<origin>\n<tree size>\n<base64 root hash>\n`, then
 * optional extension lines. The origin names the log; the size is decimal, no leading zeros.
 */
import { HASH_SIZE } from './hash.js'
import { NoteError } from './errors.js'

export interface Checkpoint {
  origin: string
  size: number
  rootHash: Uint8Array
  /** Extension lines, without newlines (none written by this log). */
  extensions?: string[]
}

export function formatCheckpoint (c: Checkpoint): string {
  if (c.origin.length === 0 || /[\n\r]/.test(c.origin)) throw new NoteError('a checkpoint origin is one non-empty line')
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new NoteError(`a checkpoint size is a non-negative integer, got ${String(c.size)}`)
  if (c.rootHash.byteLength !== HASH_SIZE) throw new NoteError(`a checkpoint root hash has ${HASH_SIZE} bytes`)
  const ext = (c.extensions ?? []).map(e => {
    if (e.length === 0 || e.includes('\n')) throw new NoteError('an extension line is non-empty and holds no newline')
    return `${e}\n`
  })
  return `${c.origin}\n${c.size}\n${Buffer.from(c.rootHash).toString('base64')}\n${ext.join('')}`
}

/** Parses a checkpoint's note text (the part before the blank line). */
export function parseCheckpoint (text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new NoteError('a checkpoint ends with a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) throw new NoteError(`a checkpoint has at least 3 lines, got ${lines.length}`)
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines
  if (origin.length === 0) throw new NoteError('checkpoint origin line is empty')
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw new NoteError(`checkpoint size ${JSON.stringify(sizeText.slice(0, 40))} is not a decimal integer without leading zeros`)
  const rootHash = Buffer.from(rootText, 'base64')
  if (rootHash.byteLength !== HASH_SIZE || rootHash.toString('base64') !== rootText) throw new NoteError('checkpoint root hash is not base64 of 32 bytes')
  for (const e of extensions) if (e.length === 0) throw new NoteError('checkpoint extension lines must not be empty')
  return { origin, size: Number(sizeText), rootHash, extensions }
}
