import { ValidationError } from '../../protocol/errors.js'

/** The tag is announced for several repositories and none was named. */
export class AmbiguousTagError extends ValidationError {
  override name = 'AmbiguousTagError'
  constructor (readonly tag: string, readonly repositories: string[]) {
    super('repository', `tag ${tag} is announced for ${repositories.length} repositories (${repositories.slice(0, 5).join(', ')}${repositories.length > 5 ? ', …' : ''}); name one`)
  }
}
