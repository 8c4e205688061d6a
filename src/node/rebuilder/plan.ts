import { WIRE } from '../../protocol/patterns.js'
import { TargetError } from './errors.js'
import { findVariant, loadRecipe, type Recipe, type Variant } from './recipe.js'

export interface RebuildRequest {
  /** git URL or local path */
  repository: string
  /** tag or commit */
  ref: string
  /** Refuse (source-error) when `ref` does not point to this commit. */
  expectedCommit?: string
  /**
   * `neko`, a recipe file, the recipe itself (already resolved by the caller), or undefined:
   * the repository's own `neko-rebuilder.json`, else its root Dockerfile as variant `default`.
   */
  recipe?: string | Recipe
  variant?: string
  platform: string
  /** Keep the OCI tarball (and the build log) here. */
  outDir?: string
}

/**
 * One rebuild with its recipe resolved: `planRebuild` makes it once per job, and the engine
 * works from it alone, so a recipe is never looked up by name twice.
 */
export interface RebuildPlan {
  repository: string
  ref: string
  expectedCommit?: string
  platform: string
  /** The variant asked for; the recipe's only one when absent. */
  variantName?: string
  outDir?: string
  /**
   * The recipe and the variant to build, when they are known before the checkout; absent
   * when the repository brings its own (`neko-rebuilder.json`, else its root Dockerfile).
   */
  resolved?: { recipe: Recipe, variant: Variant }
}

/**
 * Checks a request and resolves its recipe: a name or file is read here, a recipe the caller
 * already holds is taken as it is. Usage errors (TargetError, RecipeError) throw before
 * anything is fetched.
 */
export async function planRebuild (req: RebuildRequest): Promise<RebuildPlan> {
  if (!WIRE.platform.test(req.platform)) throw new TargetError(`platform ${JSON.stringify(req.platform)} is not an OCI platform such as linux/amd64`)
  if (req.expectedCommit != null && !WIRE.commit.test(req.expectedCommit.toLowerCase())) throw new TargetError(`commit ${JSON.stringify(req.expectedCommit)} is not a full commit id (40 hex)`)
  const plan: RebuildPlan = {
    repository: req.repository,
    ref: req.ref,
    platform: req.platform,
    ...(req.expectedCommit != null ? { expectedCommit: req.expectedCommit } : {}),
    ...(req.variant != null ? { variantName: req.variant } : {}),
    ...(req.outDir != null ? { outDir: req.outDir } : {})
  }
  if (req.recipe != null) {
    const recipe = typeof req.recipe === 'string' ? await loadRecipe(req.recipe, undefined, { platform: req.platform }) : req.recipe
    plan.resolved = { recipe, variant: variantFor(recipe, req.variant, req.platform) }
  }
  return plan
}

/** The variant of `recipe` that a rebuild for `platform` builds; TargetError when there is none. */
export function variantFor (recipe: Recipe, name: string | undefined, platform: string): Variant {
  const variant = findVariant(recipe, name)
  if (!variant.platforms.includes(platform)) {
    throw new TargetError(`variant ${variant.name} of recipe ${recipe.name} is not built for ${platform} (it lists ${variant.platforms.join(', ')})`)
  }
  return variant
}

/**
 * The plan's recipe and variant, resolving them from the checkout at `checkoutDir` when the
 * repository brings its own; the answer is kept in the plan, so it is resolved once. A
 * malformed recipe file throws RecipeError (the caller reports it as the release's own fault).
 */
export async function resolveAfterCheckout (plan: RebuildPlan, checkoutDir: string): Promise<{ recipe: Recipe, variant: Variant }> {
  if (plan.resolved == null) {
    const recipe = await loadRecipe(undefined, checkoutDir, { platform: plan.platform })
    plan.resolved = { recipe, variant: variantFor(recipe, plan.variantName, plan.platform) }
  }
  return plan.resolved
}
