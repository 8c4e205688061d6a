import { join } from 'node:path'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { createDaemon, type Daemon } from '../../src/node/daemon/index.js'
import { createP2PNode, type P2PNode } from '../../src/node/p2p/index.js'
import { createStore } from '../../src/node/store/index.js'
import { createManifestKeeper, createOutputKeeper, keepingManifests } from '../../src/node/divergence/index.js'
import { silentLogger } from '../../src/node/logger.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import type { TrustPolicy } from '../../src/protocol/policy.js'
import { exportPrivatePem, generateIdentity } from '../../src/protocol/keys.js'
import { parsePolicy } from '../../src/protocol/policy.js'
import type { TargetVerdict } from '../../src/protocol/quorum.js'
import { judge, judgedClaims } from '../../src/node/consensus/evaluate.js'
import type { Store } from '../../src/node/store/types.js'

export const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export function policyFor (builders: SigningIdentity[], announcers: SigningIdentity[], threshold = builders.length): TrustPolicy {
  return parsePolicy({
    version: 1,
    builders: builders.map((b, i) => ({ name: `builder-${i}`, operator: `operator-${i}`, publicKey: b.publicKeyPem })),
    announcers: announcers.map((a, i) => ({ name: `announcer-${i}`, publicKey: a.publicKeyPem })),
    threshold,
    minOperators: threshold,
    allowedDissent: 0
  })
}

export interface TestDaemonOptions {
  dir: string
  identity: SigningIdentity
  policy: TrustPolicy
  build?: boolean
  bootstrap?: string[]
  /** Keep the file manifests of its rebuilds and compare them with dissenting builders'. */
  manifests?: boolean
  /** Also keep the OCI outputs of its rebuilds (with `manifests`). */
  outputs?: boolean
  /** Serve the HTTP feed on a free loopback port. */
  http?: boolean
  /** Build every announced target (`join --build-all`), not only this node's share. */
  buildAll?: boolean
}

/** A daemon over loopback with a short heartbeat; `build` gives it the real rebuild engine. */
export async function startDaemon (opts: TestDaemonOptions): Promise<Daemon> {
  const store = await createStore({}, { path: join(opts.dir, 'store') })
  const engine = opts.build === true ? createRebuilder({}, { workDir: join(opts.dir, 'work'), timeoutMs: 180_000 }) : undefined
  const manifests = opts.manifests === true ? createManifestKeeper({ log: silentLogger().forComponent('manifests') }, { dir: join(opts.dir, 'manifests') }) : undefined
  const outputs = opts.outputs === true ? createOutputKeeper({ log: silentLogger().forComponent('outputs') }, { dir: join(opts.dir, 'outputs') }) : undefined
  const rebuilder = engine != null && manifests != null ? keepingManifests(engine, manifests, silentLogger().forComponent('manifests'), outputs) : engine
  const daemon = await createDaemon({ identity: opts.identity, store, policy: opts.policy, ...(rebuilder != null ? { rebuilder } : {}), ...(manifests != null ? { manifests } : {}), ...(outputs != null ? { outputs } : {}) }, {
    listen: [LOOPBACK],
    bootstrap: opts.bootstrap ?? [],
    mdns: false,
    gossip: { heartbeatIntervalMs: 100 },
    backoffMs: 200,
    divergence: { retryDelayMs: 500 },
    ...(opts.http === true ? { http: { host: '127.0.0.1', port: 0 } } : {}),
    ...(opts.buildAll === true ? { work: { buildAll: true } } : {})
  })
  await daemon.start()
  return daemon
}

/**
 * The verdicts users get from a store for one commit: the product's own `judge`, over the
 * targets that the policy's announcers announced at that commit.
 */
export async function storeVerdicts (store: Store, policy: TrustPolicy, repository: string, commit: string): Promise<TargetVerdict[]> {
  const announcements = (await store.announcements({ repository }))
    .filter(m => m.announcement.commit === commit && policy.announcerKeys.has(m.keyId)).map(m => m.announcement)
  const claims = judgedClaims(await store.claimsForCommit(repository, commit, policy.builderKeys.keys()))
  return judge({ policy, announcements, claims }).verdicts
}

/** Verdicts a node computes over its own store for one commit. */
export async function verdictsOf (d: Daemon, repository: string, commit: string): Promise<TargetVerdict[]> {
  return await storeVerdicts(d.store, d.policy(), repository, commit)
}

export { exportPrivatePem }

/** A libp2p node that relays anything and serves whatever back-fill items it is given. */
export async function startRawPeer (items: Uint8Array[] = []): Promise<P2PNode> {
  const node = await createP2PNode({
    privateKey: generateIdentity().privateKey,
    validate: () => 'accept',
    onMessage: () => {},
    backfillSource: async ({ cursor }) => cursor === 0 ? { items, next: items.length } : { items: [], next: cursor }
  }, { listen: [LOOPBACK], mdns: false, gossip: { heartbeatIntervalMs: 100, maxMessageBytes: 256 * 1024 }, backfill: { maxItemBytes: 256 * 1024 } })
  await node.start()
  return node
}
