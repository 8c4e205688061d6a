import { absoluteRepository, repositoryUrl } from '../node/rebuilder/index.js'

/**
 * `--repo` as a signed announcement or claim names it (`absoluteRepository`). A path that
 * does not exist is a SourceError here, before any work.
 */
export function repositoryArgument (value: string): string {
  repositoryUrl(value)
  return absoluteRepository(value)
}
