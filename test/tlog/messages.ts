import { createHash } from 'node:crypto'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { createIngest } from '../../src/node/ingest/index.js'
import type { Store } from '../../src/node/store/types.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signAnnouncement } from '../../src/protocol/messages.js'

/** A stand-in envelope id, for log entries that need no stored message: 64 hex characters. */
export function fakeId (i: number): string {
  return createHash('sha256').update(`message ${i}`).digest('hex')
}

const announcer = generateIdentity()
const texts = new Map<number, string>()

/** The signed announcement number `i` (of this process's announcer), as JSON text. */
function announcementText (i: number): string {
  let text = texts.get(i)
  if (text === undefined) {
    text = JSON.stringify(signAnnouncement({
      repository: 'https://example.com/r',
      tag: `v${i}`,
      commit: 'a'.repeat(40),
      recipe: { name: 'r', digest: `sha256:${'1'.repeat(64)}` },
      targets: [{ variant: 'base', platform: 'linux/amd64' }],
      announcedAt: '2026-01-01T00:00:00Z'
    }, announcer))
    texts.set(i, text)
  }
  return text
}

/** The id under which `putMessages` stores announcement number `i`. */
export function messageId (i: number): string {
  return decodeMessage(announcementText(i), { allowEmbeddedKeys: true }).id
}

/** Stores signed announcements `from` to `to - 1`, through the node's ingest. */
export async function putMessages (store: Store, from: number, to: number): Promise<void> {
  const ingest = createIngest({ store, policy: trustNobodyPolicy() })
  await ingest.recordMany(Array.from({ length: to - from }, (_, k) => announcementText(from + k)))
}
