// Publishes signed envelopes to one node through a short-lived peer (the node stores and
// gossips them as its own arrivals): `nat-publish.ts MULTIADDR TOPIC-KEY=ENVELOPE...`.
import { publishOnce } from '../../src/node/daemon/publish-once.js'
import { TOPICS } from '../../src/node/p2p/index.js'

const [to, ...items] = process.argv.slice(2)
if (to == null) throw new Error('usage: nat-publish.ts MULTIADDR announcements|claims=ENVELOPE...')
for (const item of items) {
  const eq = item.indexOf('=')
  const topic = TOPICS[item.slice(0, eq) as keyof typeof TOPICS]
  await publishOnce(Buffer.from(item.slice(eq + 1), 'utf8'), { to: [to], topic, timeoutMs: 30_000 })
}
