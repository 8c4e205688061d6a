import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import type { Envelope } from '../../src/protocol/dsse.js'
import { parsePolicy, type TrustPolicy } from '../../src/protocol/policy.js'
import type { Announcement, Claim, ClaimBase, FailureClass, ImageResult, Target } from '../../src/protocol/types.js'
import { trustNobodyPolicy } from '../../src/node/daemon/policy.js'
import { createIngest, type Ingest } from '../../src/node/ingest/index.js'
import { createStore } from '../../src/node/store/level-store.js'
import type { Store } from '../../src/node/store/types.js'

/**
 * Real signed messages for the feed and status tests: every claim is an Ed25519-signed
 * DSSE envelope, decoded and verified by the protocol code, stored in a real level store.
 */

export const REPO = 'https://github.com/m1k1o/neko'
export const COMMIT_1 = 'a'.repeat(40)
export const COMMIT_2 = 'b'.repeat(40)
export const COMMIT_3 = 'c'.repeat(40)
export const RECIPE = { name: 'neko', digest: digestOf('recipe neko') }

export function digestOf (s: string): string {
  return `sha256:${createHash('sha256').update(s).digest('hex')}`
}

/** An image whose digests all derive from `seed`; `layers` lists each layer's content seed. */
export function imageResult (seed: string, layers: string[] = ['base', 'app']): ImageResult {
  return {
    indexDigest: digestOf(`index ${seed}`),
    manifestDigest: digestOf(`manifest ${seed}`),
    configDigest: digestOf(`config ${seed}`),
    diffIds: layers.map(l => digestOf(`layer ${l}`)),
    layerSteps: layers.map((l, i) => i === 0 ? 'COPY busybox /bin/busybox # buildkit' : `RUN /bin/busybox sh -c "echo ${l.split(' ')[0] ?? ''} > /x" # buildkit`)
  }
}

export function target (commit: string, variant: string, platform: string, tag?: string): Target {
  return { repository: REPO, commit, variant, platform, ...(tag !== undefined ? { tag } : {}) }
}

/** The tail of a failed build's log, as a builder signs it (with a colour code a terminal must not obey). */
export const MAKE_LOG = '#7 [2/2] RUN make\n#7 0.412 cc -o app main.c\n#7 0.530 \u001b[31mmain.c:3: error: expected ; before }\u001b[0m\n#7 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2\n'

export function claim (t: Target, outcome: { result: ImageResult } | { failure: FailureClass, step?: string, logExcerpt?: string }): Claim {
  const base: ClaimBase = {
    target: t,
    sourceDateEpoch: 1_700_000_000,
    recipe: RECIPE,
    environment: {
      engine: { name: 'docker', version: '26.1.5' },
      buildx: '0.13.1',
      buildkit: '0.13.2',
      kernel: '6.1.0',
      arch: 'amd64',
      emulated: t.platform !== 'linux/amd64',
      tool: { name: 'neko-rebuilder', version: '0.1.0' }
    },
    startedOn: '2026-11-01T10:00:00Z',
    finishedOn: '2026-11-01T10:05:00Z'
  }
  if ('result' in outcome) return { ...base, result: outcome.result }
  return { ...base, failure: { class: outcome.failure, message: `${outcome.failure} during the build`, ...(outcome.step !== undefined ? { step: outcome.step } : {}), ...(outcome.logExcerpt !== undefined ? { logExcerpt: outcome.logExcerpt } : {}) } }
}

export function announcement (tag: string, commit: string, targets: Array<[string, string]>): Announcement {
  return {
    repository: REPO,
    tag,
    commit,
    recipe: RECIPE,
    targets: targets.map(([variant, platform]) => ({ variant, platform })),
    announcedAt: '2026-11-01T09:00:00Z'
  }
}

const ingests = new WeakMap<Store, Ingest>()

/**
 * The ingest that writes to `store` in these tests, as a node's does: feed servers and
 * consensus services under test follow its `stored` events. It records what it is given
 * whoever signed it (the tests' policies are their own business).
 */
export function ingestFor (store: Store): Ingest {
  let ingest = ingests.get(store)
  if (ingest === undefined) ingests.set(store, ingest = createIngest({ store, policy: trustNobodyPolicy() }))
  return ingest
}

/** Verifies and stores an envelope through the node's ingest. */
export async function put (store: Store, env: Envelope): Promise<string> {
  return (await ingestFor(store).record(env)).id
}

export interface Keys {
  maintainer: SigningIdentity
  builders: SigningIdentity[]
  stranger: SigningIdentity
}

export function makeKeys (): Keys {
  return { maintainer: generateIdentity(), builders: [generateIdentity(), generateIdentity(), generateIdentity()], stranger: generateIdentity() }
}

export const COMMIT_4 = 'd'.repeat(40)

/**
 * Policy JSON trusting the three builders (three operators) and the maintainer:
 * 2 agreeing builders of 2 operators make a verdict, 1 dissenter is tolerated.
 */
export function policyJson (keys: Keys): unknown {
  return {
    version: 1,
    builders: keys.builders.map((b, i) => ({ name: `builder-${i + 1}`, operator: `operator-${i + 1}`, publicKey: b.publicKeyPem })),
    announcers: [{ name: 'maintainer', publicKey: keys.maintainer.publicKeyPem }],
    threshold: 2,
    minOperators: 2,
    allowedDissent: 1
  }
}

export function testPolicy (keys: Keys): TrustPolicy {
  return parsePolicy(policyJson(keys))
}

/**
 * Four releases of one repository, under `testPolicy`:
 * - v1 (commit a…): base linux/amd64 reproducible (3 of 3 agree; a stranger dissents, untrusted);
 *   base linux/arm64 disputed (1 against 1, the third builder outstanding; the dissent differs at layer 1);
 *   app linux/amd64 failed (every trusted builder failed: build-failed ×2, timeout ×1).
 * - v2 (commit b…): base linux/amd64 unreproducible (three different digests).
 * - v3 (commit c…): base linux/amd64 pending (one claim so far).
 * - v4 (commit d…): base linux/amd64 and linux/arm64 reproducible.
 */
export async function seedReleases (store: Store, keys: Keys): Promise<{ ids: string[], v4: { amd64: ImageResult, arm64: ImageResult } }> {
  const [b1, b2, b3] = keys.builders as [SigningIdentity, SigningIdentity, SigningIdentity]
  const ids: string[] = []
  const add = async (env: Envelope): Promise<void> => { ids.push(await put(store, env)) }

  await add(signAnnouncement(announcement('v1', COMMIT_1, [['base', 'linux/amd64'], ['base', 'linux/arm64'], ['app', 'linux/amd64']]), keys.maintainer))
  const good = imageResult('v1 base amd64')
  for (const b of [b1, b2, b3]) await add(signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'v1'), { result: good }), b))
  await add(signClaim(claim(target(COMMIT_1, 'base', 'linux/amd64', 'v1'), { result: imageResult('stranger', ['base', 'evil']) }), keys.stranger))
  await add(signClaim(claim(target(COMMIT_1, 'base', 'linux/arm64', 'v1'), { result: imageResult('v1 base arm64') }), b1))
  await add(signClaim(claim(target(COMMIT_1, 'base', 'linux/arm64', 'v1'), { result: imageResult('v1 base arm64 off', ['base', 'app drifted']) }), b3))
  await add(signClaim(claim(target(COMMIT_1, 'app', 'linux/amd64', 'v1'), { failure: 'build-failed', step: 'RUN make', logExcerpt: MAKE_LOG }), b1))
  await add(signClaim(claim(target(COMMIT_1, 'app', 'linux/amd64', 'v1'), { failure: 'build-failed', step: 'RUN make' }), b2))
  await add(signClaim(claim(target(COMMIT_1, 'app', 'linux/amd64', 'v1'), { failure: 'timeout' }), b3))

  await add(signAnnouncement(announcement('v2', COMMIT_2, [['base', 'linux/amd64']]), keys.maintainer))
  await add(signClaim(claim(target(COMMIT_2, 'base', 'linux/amd64', 'v2'), { result: imageResult('v2 one', ['base', 'one']) }), b1))
  await add(signClaim(claim(target(COMMIT_2, 'base', 'linux/amd64', 'v2'), { result: imageResult('v2 two', ['base', 'two']) }), b2))
  await add(signClaim(claim(target(COMMIT_2, 'base', 'linux/amd64', 'v2'), { result: imageResult('v2 three', ['base', 'three']) }), b3))

  await add(signAnnouncement(announcement('v3', COMMIT_3, [['base', 'linux/amd64']]), keys.maintainer))
  await add(signClaim(claim(target(COMMIT_3, 'base', 'linux/amd64', 'v3'), { result: imageResult('v3') }), b1))

  await add(signAnnouncement(announcement('v4', COMMIT_4, [['base', 'linux/amd64'], ['base', 'linux/arm64']]), keys.maintainer))
  const amd64 = imageResult('v4 amd64')
  const arm64 = imageResult('v4 arm64')
  for (const b of [b1, b2]) {
    await add(signClaim(claim(target(COMMIT_4, 'base', 'linux/amd64', 'v4'), { result: amd64 }), b))
    await add(signClaim(claim(target(COMMIT_4, 'base', 'linux/arm64', 'v4'), { result: arm64 }), b))
  }
  return { ids, v4: { amd64, arm64 } }
}

/** A release of one target whose every builder signed the same digest from one engine (`engine.id`): one witness, however many keys. */
export async function seedOneEngineRelease (store: Store, keys: Keys, tag: string, commit: string): Promise<void> {
  await put(store, signAnnouncement(announcement(tag, commit, [['base', 'linux/amd64']]), keys.maintainer))
  for (const b of keys.builders) {
    const c = claim(target(commit, 'base', 'linux/amd64', tag), { result: imageResult(`${tag} one engine`) })
    c.environment.engine.id = 'ONE:ENGINE'
    await put(store, signClaim(c, b))
  }
}

export async function tempStore (): Promise<{ store: Store, dir: string, cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'neko-feed-'))
  const store = await createStore({}, { path: join(dir, 'store') })
  return {
    store,
    dir,
    async cleanup () {
      await store.close().catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}
