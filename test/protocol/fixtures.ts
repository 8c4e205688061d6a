import { createPrivateKey } from 'node:crypto'
import { identityFromPrivatePem, type SigningIdentity } from '../../src/protocol/keys.js'
import { parsePolicy, type TrustPolicy } from '../../src/protocol/policy.js'
import type { Announcement, Failure, FailureClaim, SuccessClaim, Target } from '../../src/protocol/types.js'

/** A deterministic Ed25519 identity from a one-byte seed (PKCS#8 DER = fixed prefix + 32-byte seed). */
export function fixedIdentity (seed: number): SigningIdentity {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, seed)])
  const pem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString()
  return identityFromPrivatePem(pem)
}

export const digestOf = (c: string | number): string => `sha256:${(typeof c === 'number' ? c.toString(16).padStart(2, '0') : c).repeat(64).slice(0, 64)}`
export const COMMIT = '0123456789abcdef0123456789abcdef01234567'
export const REPO = 'https://github.com/m1k1o/neko'

export function target (over: Partial<Target> = {}): Target {
  return { repository: REPO, commit: COMMIT, variant: 'base', platform: 'linux/amd64', tag: 'v3.0.0', ...over }
}

export function successClaim (manifest: string, t: Target = target()): SuccessClaim {
  return {
    target: t,
    sourceDateEpoch: 1735689600,
    recipe: { name: 'neko', digest: digestOf('e') },
    environment: {
      engine: { name: 'docker', version: '26.1.5', apiVersion: '1.45' },
      buildx: '0.13.1',
      buildkit: 'v0.13.2',
      kernel: '6.1.0-28-amd64',
      arch: 'amd64',
      emulated: false,
      tool: { name: 'neko-rebuilder', version: '0.1.0' }
    },
    startedOn: '2026-01-01T00:00:00Z',
    finishedOn: '2026-01-01T00:12:30Z',
    result: {
      indexDigest: digestOf('1'),
      manifestDigest: manifest,
      configDigest: digestOf('3'),
      diffIds: [digestOf('4'), digestOf('5')],
      layerSteps: ['COPY busybox /bin/busybox # buildkit', 'RUN /bin/busybox --install -s /bin']
    }
  }
}

export function failureClaim (failure: Failure = { class: 'build-failed', message: 'process "/bin/sh -c make" did not complete successfully: exit code: 2', step: 'RUN make' }, t: Target = target()): FailureClaim {
  const { result: _r, ...rest } = successClaim(digestOf('0'), t)
  return { ...rest, failure }
}

export function announcement (over: Partial<Announcement> = {}): Announcement {
  return {
    repository: REPO,
    tag: 'v3.0.0',
    commit: COMMIT,
    recipe: { name: 'neko', digest: digestOf('e') },
    targets: [{ variant: 'base', platform: 'linux/amd64' }, { variant: 'base', platform: 'linux/arm64' }],
    announcedAt: '2026-01-01T00:00:00Z',
    ...over
  }
}

export interface PolicyFixture {
  builders: Array<{ name: string, operator: string, identity: SigningIdentity }>
  announcers: Array<{ name: string, identity: SigningIdentity }>
  threshold: number
  minOperators: number
  allowedDissent: number
}

export function policyJson (p: PolicyFixture): Record<string, unknown> {
  return {
    version: 1,
    builders: p.builders.map(b => ({ name: b.name, operator: b.operator, publicKey: b.identity.publicKeyPem })),
    announcers: p.announcers.map(a => ({ name: a.name, publicKey: a.identity.publicKeyPem })),
    threshold: p.threshold,
    minOperators: p.minOperators,
    allowedDissent: p.allowedDissent
  }
}

/** Builders b0..b(n-1), run by operators op0..op(ops-1) in turn, and one announcer. */
export function makePolicy (n: number, opts: { threshold?: number, minOperators?: number, allowedDissent?: number, operators?: number } = {}): { policy: TrustPolicy, builders: SigningIdentity[], announcer: SigningIdentity, json: Record<string, unknown> } {
  const builders = Array.from({ length: n }, (_, i) => fixedIdentity(i + 1))
  const announcer = fixedIdentity(200)
  const ops = opts.operators ?? n
  const json = policyJson({
    builders: builders.map((identity, i) => ({ name: `b${i}`, operator: `op${i % ops}`, identity })),
    announcers: [{ name: 'release-bot', identity: announcer }],
    threshold: opts.threshold ?? Math.min(2, n),
    minOperators: opts.minOperators ?? 1,
    allowedDissent: opts.allowedDissent ?? 0
  })
  return { policy: parsePolicy(json), builders, announcer, json }
}
