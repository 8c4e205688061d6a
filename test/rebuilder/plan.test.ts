import { describe, expect, it } from 'vitest'
import { loadRecipe, planRebuild, RecipeError, TargetError } from '../../src/node/rebuilder/index.js'

const REQ = { repository: '/nowhere', ref: 'v1.0.0', platform: 'linux/amd64' }

describe('rebuild plan', () => {
  it('resolves a recipe name once, and takes a recipe the caller resolved as it is', async () => {
    const byName = await planRebuild({ ...REQ, recipe: 'neko', variant: 'base' })
    expect(byName.resolved?.recipe.name).toBe('neko')
    expect(byName.resolved?.variant.name).toBe('base')
    const neko = await loadRecipe('neko')
    const given = await planRebuild({ ...REQ, recipe: neko, variant: 'base' })
    expect(given.resolved?.recipe).toBe(neko)
    expect(given.resolved?.variant).toBe(neko.variants.find(v => v.name === 'base'))
  })

  it('leaves the recipe to the checkout when the request names none', async () => {
    const plan = await planRebuild({ ...REQ, expectedCommit: 'A'.repeat(40), outDir: '/tmp/out' })
    expect(plan).toEqual({ ...REQ, expectedCommit: 'A'.repeat(40), outDir: '/tmp/out' })
  })

  it('refuses what cannot be built before anything is fetched', async () => {
    await expect(planRebuild({ ...REQ, platform: 'linux amd64' })).rejects.toThrow(/not an OCI platform/)
    await expect(planRebuild({ ...REQ, expectedCommit: 'a'.repeat(64) })).rejects.toThrow(/not a full commit id/)
    await expect(planRebuild({ ...REQ, recipe: 'neko', variant: 'nope' })).rejects.toThrow(TargetError)
    await expect(planRebuild({ ...REQ, platform: 'linux/arm64', recipe: 'neko', variant: 'intel' })).rejects.toThrow(/not built for linux\/arm64/)
    await expect(planRebuild({ ...REQ, recipe: 'no-such-recipe' })).rejects.toThrow(RecipeError)
  })
})
