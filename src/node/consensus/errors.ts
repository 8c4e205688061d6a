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

/** The store is held by a running node (LevelDB allows one process). */
export class StoreLockedError extends NekoError {
  override name = 'StoreLockedError'
  override readonly code = 'ERR_STORE_LOCKED'
  constructor (readonly path: string) {
    super(`the store at ${path} is locked by a running node; ask that node instead with --node http://HOST:PORT (its --http address)`)
  }
}
