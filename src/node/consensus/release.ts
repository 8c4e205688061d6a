import type { TrustPolicy } from '../../protocol/policy.js'
import type { Store, StoredAnnouncement, StoredClaim } from '../store/types.js'
import { AmbiguousTagError, NoTrustedAnnouncementError, UnknownTagError } from './errors.js'
import { announcerTrusted } from './evaluate.js'

/**
 * Where a release's signed messages are read: a node's store, or a node's HTTP API (whose
 * envelopes the reader verifies itself). Every reader of a release goes through
 * `readRelease` over one of these, so all apply the same trust rule.
 */
export interface ReleaseSource {
  /** Named in errors: `the store of DIR`, a node's URL. */
  where: string
  /** The announcements of `tag` (of `repository`, when given). */
  announcements: (tag: string, repository?: string) => Promise<StoredAnnouncement[]>
  /** The claims stored for one commit (claims of other repositories or commits may be left out). */
  claimsFor: (repository: string, commit: string) => Promise<StoredClaim[]>
  /** Builder keys not counted, with the reason (a log proven split). */
  setAside?: ReadonlyMap<string, string> | undefined
}

/** A release as its readers judge it: the trusted announcement, the others, and the claims of its commit. */
export interface Release {
  chosen: StoredAnnouncement
  /** Other announcements of the tag (a moved tag, an untrusted announcer), newest first. */
  others: StoredAnnouncement[]
  claims: StoredClaim[]
  setAside?: ReadonlyMap<string, string> | undefined
}

/** The newest announcement by an announcer of the policy, or none: the release a tag names. */
export function newestTrusted (policy: TrustPolicy, anns: Iterable<StoredAnnouncement>): StoredAnnouncement | undefined {
  let out: StoredAnnouncement | undefined
  for (const m of anns) if (announcerTrusted(policy, m.keyId) && (out === undefined || m.cursor > out.cursor)) out = m
  return out
}

/**
 * The one trust rule: a release is what an announcer of the policy announced, the newest
 * such announcement of the tag. Without one there is no release to judge, whatever others
 * signed ("this tag is that commit" is anyone's to claim): `NoTrustedAnnouncementError`.
 * Several repositories announcing the tag with none named is an error, not a guess.
 */
export function trustedAnnouncement (policy: TrustPolicy, tag: string, found: readonly StoredAnnouncement[], where: string): { chosen: StoredAnnouncement, others: StoredAnnouncement[] } {
  const anns = found.filter(m => m.announcement.tag === tag)
  if (anns.length === 0) throw new UnknownTagError(tag, where)
  const repositories = [...new Set(anns.map(m => m.announcement.repository))]
  if (repositories.length > 1) throw new AmbiguousTagError(tag, repositories.sort())
  const newestFirst = [...anns].sort((a, b) => b.cursor - a.cursor)
  const chosen = newestTrusted(policy, anns)
  if (chosen === undefined) {
    const newest = newestFirst[0] as StoredAnnouncement
    const detail = policy.announcers.length === 0
      ? 'the policy names no announcers'
      : `${anns.length === 1 ? 'the only one' : `the newest of ${anns.length}`}, for commit ${newest.announcement.commit}, is signed by ${newest.keyId}`
    throw new NoTrustedAnnouncementError(`tag ${tag}`, where, detail)
  }
  return { chosen, others: newestFirst.filter(m => m !== chosen) }
}

/**
 * Reads one release from `source` under `policy`: its trusted announcement (see
 * `trustedAnnouncement`) and the claims of its commit. `status`, `attest`, `join --attest`
 * and the HTTP API (and through it the dashboard and feed) all read releases this way.
 */
export async function readRelease (source: ReleaseSource, policy: TrustPolicy, tag: string, opts: { repository?: string | undefined } = {}): Promise<Release> {
  const where = `${source.where}${opts.repository !== undefined ? ` for ${opts.repository}` : ''}`
  const { chosen, others } = trustedAnnouncement(policy, tag, await source.announcements(tag, opts.repository), where)
  const a = chosen.announcement
  const claims = (await source.claimsFor(a.repository, a.commit)).filter(m => m.claim.target.repository === a.repository && m.claim.target.commit === a.commit)
  return { chosen, others, claims, setAside: source.setAside }
}

/** A store as a release source: the release index for announcements, the commit index for the trusted builders' claims. */
export function storeReleaseSource (store: Store, policy: TrustPolicy, where: string): ReleaseSource {
  return {
    where,
    announcements: async (tag, repository) => await store.announcements(repository !== undefined ? { repository, tag } : { tag }),
    claimsFor: async (repository, commit) => await store.claimsForCommit(repository, commit, policy.builderKeys.keys())
  }
}
