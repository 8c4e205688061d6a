import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadRecipe, planRebuild, RecipeError, resolveAfterCheckout, TargetError } from '../../src/node/rebuilder/index.js'

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

describe('rebuild plan after the checkout', () => {
  it('resolves the repository\'s own recipe once and keeps it in the plan', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plan-'))
    try {
      await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n')
      const plan = await planRebuild(REQ)
      const first = await resolveAfterCheckout(plan, dir)
      expect(first.variant.name).toBe('default')
      expect(plan.resolved).toBe(first)
      // The checkout changing afterwards changes nothing: the plan holds the answer.
      await writeFile(join(dir, 'neko-rebuilder.json'), '{ not json')
      expect(await resolveAfterCheckout(plan, dir)).toBe(first)
      await expect(resolveAfterCheckout(await planRebuild(REQ), dir)).rejects.toThrow(RecipeError)
      const given = await planRebuild({ ...REQ, recipe: 'neko', variant: 'base' })
      expect(await resolveAfterCheckout(given, dir)).toBe(given.resolved)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
