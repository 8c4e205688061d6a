import { fileURLToPath } from 'node:url'
import { repositoryUrl } from '../node/rebuilder/index.js'

/**
 * `--repo` as a signed announcement or claim names it: a local path made absolute, since
 * others read it from other directories (a `.` would name each reader's own directory);
 * URLs as given. A path that does not exist is a SourceError here, before any work.
 */
export function repositoryArgument (value: string): string {
  const url = repositoryUrl(value)
  return url.startsWith('file://') && !/^file:/i.test(value) ? fileURLToPath(url) : value
}
