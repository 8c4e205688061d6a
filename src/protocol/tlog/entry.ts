/**
 * What a node's log holds and how it names itself. An entry is the canonical form of one
 * stored message, `<kind> <envelope id>\n` in ASCII (`claim 3f…9a\n`): envelopes can be up to
 * 256 KiB while an entry bundle carries at most 64 KiB per entry, and the envelope id already
 * commits to the payload and every signature (see docs/protocol.md). The envelope itself is
 * served by the feed; its id names the leaf.
 */
import { ValidationError } from '../errors.js'
import { leafHash } from './hash.js'

export type EntryKind = 'announcement' | 'claim'

const ID = /^[0-9a-f]{64}$/
const ENTRY = /^(announcement|claim) ([0-9a-f]{64})\n$/

export function formatEntry (kind: EntryKind, id: string): Buffer {
  if (!ID.test(id)) throw new ValidationError('entry id', 'must be 64 lowercase hex characters (an envelope id)')
  return Buffer.from(`${kind} ${id}\n`, 'ascii')
}

export function parseEntry (entry: Uint8Array): { kind: EntryKind, id: string } {
  const m = ENTRY.exec(Buffer.from(entry).toString('latin1'))
  if (m === null) throw new ValidationError('entry', 'not "<announcement|claim> <64 hex>\\n"')
  return { kind: m[1] as EntryKind, id: m[2] ?? '' }
}

/** The leaf hash of the entry for a stored message. */
export function entryLeafHash (kind: EntryKind, id: string): Buffer {
  return leafHash(formatEntry(kind, id))
}

/** The checkpoint origin (and note key name) of the log of the node with key id `keyId`. */
export function logOrigin (keyId: string): string {
  return `neko-rebuilder/log/${keyId}`
}

/** The cosigner name of the node with key id `keyId` when it witnesses other logs. */
export function witnessName (keyId: string): string {
  return `neko-rebuilder/witness/${keyId}`
}

/** The key id an origin or witness name ends in, or undefined. */
export function keyIdOfName (name: string): string | undefined {
  const m = /^neko-rebuilder\/(?:log|witness)\/([0-9a-f]{64})$/.exec(name)
  return m?.[1]
}
