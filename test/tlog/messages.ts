import { createHash } from 'node:crypto'
import type { Store } from '../../src/node/store/types.js'

/** A stand-in envelope id: the log only needs 64 hex characters per message. */
export function fakeId (i: number): string {
  return createHash('sha256').update(`message ${i}`).digest('hex')
}

/** Stores announcements `from` to `to - 1` (the store checks their shape, not their signatures). */
export async function putMessages (store: Store, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    await store.putMessage({ id: fakeId(i), kind: 'announcement', keyId: 'k'.repeat(64), envelopeJson: '{}', announcement: { repository: 'https://example.com/r', tag: `v${i}`, commit: 'a'.repeat(40) } as never })
  }
}
