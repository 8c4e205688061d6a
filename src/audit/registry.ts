import type { RuleFamily } from './context.js'
import { compareText } from './lines.js'
import { baseImages } from './rules/base-images.js'
import { buildkit } from './rules/buildkit.js'
import { caches } from './rules/caches.js'
import { clocks } from './rules/clocks.js'
import { downloads } from './rules/downloads.js'
import { ecosystems } from './rules/ecosystems.js'
import { git } from './rules/git.js'
import { leftovers } from './rules/leftovers.js'
import { packages } from './rules/packages.js'
import { workflows } from './rules/workflows.js'
import type { RuleMeta } from './types.js'

/** Every rule family, in the order of the report's fix priority. */
export const FAMILIES: readonly RuleFamily[] = [baseImages, clocks, packages, downloads, git, buildkit, workflows, leftovers, caches, ecosystems]

/** Every rule, sorted by id. */
export const RULES: readonly RuleMeta[] = FAMILIES.flatMap(f => f.rules).sort((a, b) => compareText(a.id, b.id))

const byId = new Map(RULES.map(r => [r.id, r]))

export function ruleById (id: string): RuleMeta | undefined {
  return byId.get(id)
}
