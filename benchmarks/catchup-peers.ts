/**
 * The serving side of `npm run bench:catchup`, in its own process (as peers are in a real
 * network, and so their store reads do not share the catching-up node's thread). Reads one
 * JSON argument `{ policy, stores: [dir…], hostile: boolean }`, starts one daemon per store
 * (and, with `hostile`, one peer that floods valid claims of keys outside the policy, then
 * stalls), prints one JSON line `{ "addrs": [...] }` and runs until stdin closes.
 */
import { createDaemon, type Daemon } from '../src/node/daemon/index.js'
import { createP2PNode, type BackfillSource, type P2PNode } from '../src/node/p2p/index.js'
import { createStore } from '../src/node/store/level-store.js'
import { generateIdentity } from '../src/protocol/keys.js'
import { signClaim } from '../src/protocol/messages.js'
import { parsePolicy } from '../src/protocol/policy.js'
import { claim, imageResult, REPO } from '../test/http/fixtures.js'

const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

interface Config { policy: unknown, stores: string[], hostile: boolean }

/** Valid claims of 64 keys outside the policy, on many targets; a page per request, then silence. */
function flood (count: number): BackfillSource {
  const strangers = Array.from({ length: 64 }, () => generateIdentity())
  const items = Array.from({ length: count }, (_, i) => Buffer.from(JSON.stringify(signClaim(
    claim({ repository: REPO, commit: (i + 1).toString(16).padStart(40, 'f'), variant: `v${i % 7}`, platform: 'linux/amd64' }, { result: imageResult(`flood ${i}`) }),
    strangers[i % strangers.length]!
  ))))
  return async ({ cursor, limit }) => {
    // Claims to be far ahead, then stalls once its pool is spent: the client's deadline ends it.
    if (cursor >= items.length) return await new Promise<never>(() => {})
    const page = items.slice(cursor, cursor + limit)
    return { items: page, next: cursor + page.length, from: cursor, head: 1_000_000_000 }
  }
}

async function main (): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as Config
  const policy = parsePolicy(config.policy)
  const daemons: Daemon[] = []
  const peers: P2PNode[] = []
  for (const dir of config.stores) {
    const d = await createDaemon({ identity: generateIdentity(), store: await createStore({}, { path: dir }), policy }, { listen: [LOOPBACK], bootstrap: [], mdns: false })
    await d.start()
    daemons.push(d)
  }
  if (config.hostile) {
    const p = await createP2PNode({ privateKey: generateIdentity().privateKey, validate: () => 'ignore', onMessage: () => {}, backfillSource: flood(8192) }, { listen: [LOOPBACK], mdns: false })
    await p.start()
    peers.push(p)
  }
  process.stdout.write(JSON.stringify({ addrs: [...daemons.map(d => d.multiaddrs()[0]!), ...peers.map(p => p.multiaddrs()[0]!)] }) + '\n')
  process.stdin.resume()
  await new Promise(resolve => process.stdin.on('end', resolve))
  for (const d of daemons) await d.stop().catch(() => {})
  for (const p of peers) await p.stop().catch(() => {})
  process.exit(0)
}

main().catch((err: unknown) => { process.stderr.write(`${String((err as Error).stack ?? err)}\n`); process.exit(1) })
