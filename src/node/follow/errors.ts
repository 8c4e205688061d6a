import { NekoError } from '../../protocol/errors.js'

/** A second follower under a name already fed: the two would share one cursor. */
export class DuplicateFollowerError extends NekoError {
  override name = 'DuplicateFollowerError'
  override readonly code = 'ERR_DUPLICATE_FOLLOWER'
  constructor (readonly follower: string) {
    super(`a follower named ${follower} is already fed`)
  }
}
