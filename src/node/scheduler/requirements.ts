import { loadRecipe, requirementsMet, type PlatformCapabilities, type Recipe } from '../rebuilder/index.js'

/**
 * Whether this node can build one announced target. The announcement names its recipe; a
 * built-in recipe says what each variant needs. A recipe that lives in the repository is not
 * known before checkout: then only the platform is checked. An NVIDIA GPU is never needed to
 * build (only to run the image).
 */
export async function canBuildTarget (recipeName: string, target: { variant: string, platform: string }, caps: PlatformCapabilities, cache: Map<string, Recipe | null>): Promise<{ ok: boolean, reason?: string }> {
  if (!caps.platforms.some(p => p.platform === target.platform)) {
    return { ok: false, reason: `this node does not build ${target.platform}` }
  }
  let recipe = cache.get(recipeName)
  if (recipe === undefined) {
    recipe = await builtinRecipe(recipeName)
    cache.set(recipeName, recipe)
  }
  const variant = recipe?.variants.find(v => v.name === target.variant)
  if (variant != null) {
    return requirementsMet(variant, caps, target.platform) ? { ok: true } : { ok: false, reason: `variant ${target.variant} needs what this node lacks` }
  }
  return { ok: true }
}

/** A built-in recipe by name, or null when the name is not one (it is the repository's own). */
export async function builtinRecipe (name: string): Promise<Recipe | null> {
  if (!/^[a-z][a-z0-9-]{0,63}$/.test(name)) return null
  try {
    const recipe = await loadRecipe(name)
    return recipe.name === name ? recipe : null
  } catch {
    return null
  }
}
