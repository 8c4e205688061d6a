import { ValidationError } from './errors.js'
import type { Target } from './types.js'

/**
 * Canonical key of a target: `<repository>@<commit>#<variant>@<platform>`. The tag is
 * not part of it (an alias). Unambiguous because repositories may not contain `#`,
 * commits are 40 hex characters and variants and platforms may not contain `@` or `#`.
 */
export function targetKey (t: Pick<Target, 'repository' | 'commit' | 'variant' | 'platform'>): string {
  return `${t.repository}@${t.commit}#${t.variant}@${t.platform}`
}

const KEY = /^([^\s#]+)@([0-9a-f]{40})#([^\s@#]+)@([^\s@#]+)$/

/** The inverse of `targetKey`. */
export function parseTargetKey (key: string): Target {
  const m = KEY.exec(key)
  if (m == null) throw new ValidationError('targetKey', `not <repository>@<commit>#<variant>@<platform>: ${JSON.stringify(key.slice(0, 200))}`)
  return { repository: m[1] as string, commit: m[2] as string, variant: m[3] as string, platform: m[4] as string }
}

/** Subject name of a claim: `<repository>#<variant>@<platform>`. */
export function targetSubjectName (t: Pick<Target, 'repository' | 'variant' | 'platform'>): string {
  return `${t.repository}#${t.variant}@${t.platform}`
}
