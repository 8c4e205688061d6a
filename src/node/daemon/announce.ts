import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ValidationError } from '../../protocol/errors.js'
import type { Announcement } from '../../protocol/types.js'
import { checkout, loadRecipe, recipeDigest, releaseTargets, resolveRef, type PublishedTarget, type Recipe } from '../rebuilder/index.js'

export interface AnnouncementRequest {
  repository: string
  tag: string
  /** When given, the tag must point to it. */
  commit?: string
  /** Built-in recipe name or file; default: the repository's own recipe, else its Dockerfile. */
  recipe?: string
  /** Only these variants (default: all the recipe has). */
  variants?: string[]
  /** Only these platforms (default: all each variant lists). */
  platforms?: string[]
  signal?: AbortSignal
}

/**
 * Builds the announcement of one release: resolves the tag to its commit, loads the recipe
 * (from the commit itself when none is named) and lists every variant × platform to rebuild,
 * or, for a recipe whose targets follow the release (`targetsFrom`), those the commit's
 * workflows publish.
 */
export async function prepareAnnouncement (req: AnnouncementRequest): Promise<Announcement> {
  const resolved = await resolveRef(req.repository, req.tag, { signal: req.signal })
  if (req.commit != null && req.commit.toLowerCase() !== resolved.commit) {
    throw new ValidationError('commit', `tag ${req.tag} points to ${resolved.commit}, not ${req.commit}`)
  }
  let recipe: Recipe | undefined = req.recipe != null ? await loadRecipe(req.recipe) : undefined
  let released: PublishedTarget[]
  if (recipe != null && recipe.targetsFrom == null) {
    released = await releaseTargets(recipe, undefined)
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'neko-announce-'))
    try {
      await checkout(req.repository, resolved.commit, join(dir, 'src'), { signal: req.signal })
      // The implicit recipe builds any platform asked for, as it does for `rebuild` (recipes.md).
      recipe ??= await loadRecipe(undefined, join(dir, 'src'), { platform: req.platforms ?? [] })
      released = await releaseTargets(recipe, join(dir, 'src'))
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  const known = new Set(recipe.variants.map(v => v.name))
  for (const v of req.variants ?? []) {
    if (!known.has(v)) throw new ValidationError('variant', `recipe ${recipe.name} has no variant ${JSON.stringify(v)} (it has ${[...known].join(', ')})`)
  }
  const targets: Announcement['targets'] = released.filter(t =>
    (req.variants == null || req.variants.length === 0 || req.variants.includes(t.variant)) &&
    (req.platforms == null || req.platforms.length === 0 || req.platforms.includes(t.platform)))
  if (targets.length === 0) {
    throw new ValidationError('platform', `no target left: recipe ${recipe.name} builds ${recipe.variants.map(v => `${v.name} for ${v.platforms.join(', ')}`).join('; ')}`)
  }
  return {
    repository: req.repository,
    tag: req.tag,
    commit: resolved.commit,
    recipe: { name: recipe.name, digest: recipeDigest(recipe) },
    targets,
    announcedAt: new Date().toISOString()
  }
}
