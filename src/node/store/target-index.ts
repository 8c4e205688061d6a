import { targetKey } from '../../protocol/target.js'

/**
 * The key under which the store indexes a target: the protocol's `targetKey`
 * (repository, commit, variant, platform; the tag is an alias, not identity).
 * Callers of `claimsForTarget` pass the same string.
 */
export const targetIndexKey = targetKey
