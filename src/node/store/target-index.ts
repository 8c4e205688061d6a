import type { Target } from '../../protocol/types.js'

/**
 * The key under which the store indexes a target: repository, commit, variant and platform
 * (the tag is an alias, not identity). Callers of `claimsForTarget` pass the same string.
 */
export function targetIndexKey (t: Pick<Target, 'repository' | 'commit' | 'variant' | 'platform'>): string {
  return `${t.repository}@${t.commit}#${t.variant}@${t.platform}`
}
