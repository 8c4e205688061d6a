import { NekoError, ValidationError } from '../../protocol/errors.js'

/** The tag is announced for several repositories and none was named. */
export class AmbiguousTagError extends ValidationError {
  override name = 'AmbiguousTagError'
  constructor (readonly tag: string, readonly repositories: string[]) {
    super('repository', `tag ${tag} is announced for ${repositories.length} repositories (${repositories.slice(0, 5).join(', ')}${repositories.length > 5 ? ', …' : ''}); name one`)
  }
}

/** No announcement of the tag is known where we looked. */
export class UnknownTagError extends NekoError {
  override name = 'UnknownTagError'
  override readonly code = 'ERR_UNKNOWN_TAG'
  constructor (readonly tag: string, where: string) {
    super(`no announcement of tag ${tag} in ${where}`)
  }
}

/**
 * Announcements of the tag exist, but none by an announcer of the policy. Without a trusted
 * announcement there is no release: anyone can sign "this tag is that commit".
 */
export class NoTrustedAnnouncementError extends NekoError {
  override name = 'NoTrustedAnnouncementError'
  override readonly code = 'ERR_NO_TRUSTED_ANNOUNCEMENT'
  /** `what`: `tag v1.0.0`, or `any release` for a bundle. */
  constructor (readonly what: string, where: string, detail: string) {
    super(`no announcement of ${what} in ${where} is signed by an announcer of the policy (${detail}): without a trusted announcement there is no release to judge`)
  }
}

export { StoreLockedError } from '../store/errors.js'

/** A registry check that was asked for could not be done: it never passes as `unknown`. */
export class PublishedCheckError extends NekoError {
  override name = 'PublishedCheckError'
  override readonly code = 'ERR_PUBLISHED_CHECK'
}
