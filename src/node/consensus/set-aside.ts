import type { KeyObject } from 'node:crypto'
import { splitViewSetAside, type KeyedSplitView } from '../../protocol/tlog/split-view.js'

/** Builder key id → why the node's own verdicts do not count it. */
export type SetAsideLookup = () => Promise<ReadonlyMap<string, string>>

/**
 * The builders a node's own verdicts set aside: those whose log its witness proved split.
 * Each proof is checked with the builder's key once, when it first appears; the witness only
 * ever adds proofs, so an unchanged count means an unchanged answer.
 */
export function splitViewLookup (components: { splitViews: () => Promise<KeyedSplitView[]>, builderKeys: ReadonlyMap<string, KeyObject> }): SetAsideLookup {
  let seen = -1
  let current: ReadonlyMap<string, string> = new Map()
  return async () => {
    const proofs = await components.splitViews()
    if (proofs.length !== seen) {
      current = splitViewSetAside(components.builderKeys, proofs).setAside
      seen = proofs.length
    }
    return current
  }
}
