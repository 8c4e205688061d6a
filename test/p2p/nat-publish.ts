// Publishes signed envelopes to one node through a short-lived peer (the node stores and
// gossips them as its own arrivals): `nat-publish.ts MULTIADDR FILE`, FILE a JSON array of
// `{ topic: 'announcements' | 'claims', envelope }`.
import { readFile } from 'node:fs/promises'
import { publishOnce } from '../../src/cli/publish-once.js'
import { TOPICS } from '../../src/node/p2p/index.js'

const [to, file] = process.argv.slice(2)
if (to == null || file == null) throw new Error('usage: nat-publish.ts MULTIADDR FILE')
const items = JSON.parse(await readFile(file, 'utf8')) as Array<{ topic: keyof typeof TOPICS, envelope: string }>
for (const { topic, envelope } of items) await publishOnce(Buffer.from(envelope, 'utf8'), { to: [to], topic: TOPICS[topic], timeoutMs: 60_000 })
