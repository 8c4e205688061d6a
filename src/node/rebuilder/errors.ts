import { NekoError } from '../../protocol/errors.js'

/** A recipe (built-in, file, or the repository's own) is malformed; `field` is its JSON path, e.g. `/variants/0/platforms/1`. */
export class RecipeError extends NekoError {
  override name = 'RecipeError'
  override readonly code = 'ERR_RECIPE'
  constructor (readonly field: string, message: string) {
    super(`recipe ${field}: ${message}`)
  }
}

/** The source cannot be fetched, the ref does not resolve, or it points elsewhere than expected. */
export class SourceError extends NekoError {
  override name = 'SourceError'
  override readonly code: string = 'ERR_SOURCE'
}

/** A prepare step's output path leaves the checkout through a committed symlink: a source problem. */
export class PrepareOutputError extends SourceError {
  override name = 'PrepareOutputError'
  override readonly code = 'ERR_PREPARE_OUTPUT'
}

/** The Docker engine or its builder cannot do a reproducible rebuild; the message says what to change. */
export class EngineNotReadyError extends NekoError {
  override name = 'EngineNotReadyError'
  override readonly code = 'ERR_ENGINE_NOT_READY'
}

/** A target asks for what this node does not have (a platform it cannot build). */
export class RequirementsError extends NekoError {
  override name = 'RequirementsError'
  override readonly code = 'ERR_REQUIREMENTS'
}

/** The requested variant is not in the recipe, or the platform is not in the variant. */
export class TargetError extends NekoError {
  override name = 'TargetError'
  override readonly code = 'ERR_TARGET'
}
