import type { Announcement, Claim } from '../../src/protocol/types.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { claim, imageResult, RECIPE, REPO } from '../http/fixtures.js'

/** Targets of every release: three variants on two platforms. */
export const HISTORY_TARGETS: Array<[string, string]> = [['base', 'linux/amd64'], ['base', 'linux/arm64'], ['app', 'linux/amd64']]

/**
 * A network's history, oldest first, as signed envelopes: releases, each an announcement then
 * one claim per target from each builder (on its own engine, all agreeing), so a release is
 * 1 + targets × builders messages. Signing is the only cost (no verification): 100,000
 * messages take a few seconds.
 */
export interface History {
  announcer: SigningIdentity
  builders: SigningIdentity[]
  envelopes: string[]
  /** The newest release (its messages are the last ones). */
  newest: { tag: string, commit: string }
}

export function commitOf (release: number): string {
  return release.toString(16).padStart(40, '0')
}

export function makeHistory (messages: number, opts: { builders?: number, announcer?: SigningIdentity, signers?: SigningIdentity[] } = {}): History {
  const announcer = opts.announcer ?? generateIdentity()
  const builders = opts.signers ?? Array.from({ length: opts.builders ?? 3 }, () => generateIdentity())
  const perRelease = 1 + HISTORY_TARGETS.length * builders.length
  const releases = Math.max(1, Math.round(messages / perRelease))
  const envelopes: string[] = []
  let newest = { tag: '', commit: '' }
  for (let r = 0; r < releases; r++) {
    const tag = `v${Math.floor(r / 1000)}.${r % 1000}.0`
    const commit = commitOf(r + 1)
    const a: Announcement = { repository: REPO, tag, commit, recipe: RECIPE, targets: HISTORY_TARGETS.map(([variant, platform]) => ({ variant, platform })), announcedAt: new Date(Date.UTC(2026, 0, 1) + r * 60_000).toISOString() }
    envelopes.push(JSON.stringify(signAnnouncement(a, announcer)))
    for (const [variant, platform] of HISTORY_TARGETS) {
      const result = imageResult(`${tag} ${variant} ${platform}`, ['base', variant])
      builders.forEach((b, i) => {
        const c: Claim = claim({ repository: REPO, commit, variant, platform, tag }, { result })
        c.environment = { ...c.environment, engine: { ...c.environment.engine, id: `engine-${i}` } }
        envelopes.push(JSON.stringify(signClaim(c, b)))
      })
    }
    newest = { tag, commit }
  }
  return { announcer, builders, envelopes, newest }
}
