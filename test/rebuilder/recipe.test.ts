import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadRecipe, parseRecipe, recipeDigest, requirementsMet, unmetRequirements, findVariant, RecipeError, TargetError, type Recipe } from '../../src/node/rebuilder/index.js'

const good = (): Record<string, unknown> => ({
  name: 'demo',
  variants: [
    { name: 'base', platforms: ['linux/amd64', 'linux/arm64'], build: { context: '.', dockerfile: 'Dockerfile' } },
    { name: 'app', platforms: ['linux/amd64'], build: { context: 'app', dockerfile: 'app/Dockerfile', args: { X: '1' } }, from: { BASE_IMAGE: 'base' } }
  ]
})

function fieldOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(RecipeError)
    return (err as RecipeError).field
  }
  throw new Error('expected a RecipeError')
}

describe('recipes', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'recipe-test-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('accepts a well-formed recipe', () => {
    const r = parseRecipe(good())
    expect(r.variants.map(v => v.name)).toEqual(['base', 'app'])
  })

  it('names the JSON path of a bad field', () => {
    const bad = good()
    ;(bad.variants as Array<Record<string, unknown>>)[1]!.platforms = ['linux/amd64', 'Linux AMD64']
    expect(fieldOf(() => parseRecipe(bad))).toBe('/variants/1/platforms/1')

    const unknown = good()
    ;(unknown.variants as Array<Record<string, unknown>>)[0]!.dockerfil = 'x'
    expect(fieldOf(() => parseRecipe(unknown))).toBe('/variants/0/dockerfil')

    const missing = good()
    delete ((missing.variants as Array<Record<string, unknown>>)[0]!.build as Record<string, unknown>).dockerfile
    expect(fieldOf(() => parseRecipe(missing))).toBe('/variants/0/build/dockerfile')

    const unpinned = good()
    ;(unpinned.variants as Array<Record<string, unknown>>)[0]!.prepare = [{ image: 'golang:1.24', command: ['go'] }]
    expect(fieldOf(() => parseRecipe(unpinned))).toBe('/variants/0/prepare/0/image')
  })

  it('takes a smoke test per variant, bounded, and names what is wrong with one', () => {
    const withSmoke = good()
    ;(withSmoke.variants as Array<Record<string, unknown>>)[1]!.smoke = { command: ['/usr/bin/neko', '--version'], gpu: true, timeoutSeconds: 60 }
    expect(parseRecipe(withSmoke).variants[1]?.smoke).toEqual({ command: ['/usr/bin/neko', '--version'], gpu: true, timeoutSeconds: 60 })
    const cases: Array<[unknown, string]> = [
      [{ command: [] }, '/variants/0/smoke/command'],
      [{ command: Array.from({ length: 65 }, () => 'x') }, '/variants/0/smoke/command'],
      [{ command: ['x'.repeat(1025)] }, '/variants/0/smoke/command/0'],
      [{ command: ['true'], gpu: 'yes' }, '/variants/0/smoke/gpu'],
      [{ command: ['true'], timeoutSeconds: 0 }, '/variants/0/smoke/timeoutSeconds'],
      [{ command: ['true'], shell: true }, '/variants/0/smoke/shell'],
      [{ gpu: true }, '/variants/0/smoke/command']
    ]
    for (const [smoke, field] of cases) {
      const bad = good()
      ;(bad.variants as Array<Record<string, unknown>>)[0]!.smoke = smoke
      expect(fieldOf(() => parseRecipe(bad))).toBe(field)
    }
  })

  it('refuses paths that leave the checkout, unknown bases and duplicate names', () => {
    const escape = good()
    ;((escape.variants as Array<Record<string, unknown>>)[0]!.build as Record<string, unknown>).context = '../etc'
    expect(fieldOf(() => parseRecipe(escape))).toBe('/variants/0/build/context')

    const base = good()
    ;(base.variants as Array<Record<string, unknown>>)[1]!.from = { BASE_IMAGE: 'nope' }
    expect(fieldOf(() => parseRecipe(base))).toBe('/variants/1/from/BASE_IMAGE')

    const dup = good()
    ;(dup.variants as Array<Record<string, unknown>>)[1]!.name = 'base'
    expect(fieldOf(() => parseRecipe(dup))).toBe('/variants/1/name')
  })

  it('digests canonical JSON: key order does not matter, content does', () => {
    const a = parseRecipe(good())
    const reordered = JSON.parse(JSON.stringify({ variants: good().variants, name: 'demo' })) as Recipe
    expect(recipeDigest(reordered)).toBe(recipeDigest(a))
    expect(recipeDigest(a)).toMatch(/^sha256:[0-9a-f]{64}$/)
    const changed = parseRecipe(good())
    changed.variants[0]!.build.target = 'final'
    expect(recipeDigest(changed)).not.toBe(recipeDigest(a))
  })

  it('loads the built-in neko recipe with every variant pinned and published', async () => {
    const neko = await loadRecipe('neko')
    const names = neko.variants.map(v => v.name)
    expect(names).toEqual(expect.arrayContaining(['base', 'nvidia', 'intel', 'firefox', 'chromium', 'nvidia-firefox', 'intel-chromium']))
    expect(findVariant(neko, 'base').platforms).toEqual(['linux/amd64', 'linux/arm64'])
    expect(findVariant(neko, 'nvidia').requires?.nvidia).toBe(true)
    expect(findVariant(neko, 'firefox').from).toEqual({ BASE_IMAGE: 'base' })
    for (const v of neko.variants) expect(v.image).toMatch(/^ghcr\.io\/m1k1o\/neko\//)
    const prepare = findVariant(neko, 'base').prepare?.[0]
    expect(prepare?.image).toMatch(/^golang:[^@]+@sha256:[0-9a-f]{64}$/)
    expect(prepare?.stdout).toBe('Dockerfile')
    expect(prepare?.command).toContain('Dockerfile.tmpl')
  })

  it('uses a repository recipe file, else the root Dockerfile as variant default', async () => {
    const repo = join(dir, 'repo')
    const plain = await loadRecipe(undefined, dir)
    expect(plain.variants.map(v => v.name)).toEqual(['default'])
    expect(plain.variants[0]!.build.dockerfile).toBe('Dockerfile')
    expect((await loadRecipe(undefined, dir, { platform: 'linux/riscv64' })).variants[0]!.platforms).toContain('linux/riscv64')
    await rm(repo, { recursive: true, force: true })
    await import('node:fs/promises').then(async fs => await fs.mkdir(repo))
    await writeFile(join(repo, 'neko-rebuilder.json'), JSON.stringify(good()))
    expect((await loadRecipe(undefined, repo)).name).toBe('demo')
    await writeFile(join(repo, 'neko-rebuilder.json'), '{"name": "x", "variants": []}')
    await expect(loadRecipe(undefined, repo)).rejects.toThrow(/\/variants/)
    await writeFile(join(dir, 'broken.json'), '{ not json')
    await expect(loadRecipe(join(dir, 'broken.json'))).rejects.toBeInstanceOf(RecipeError)
    await expect(loadRecipe('no-such-recipe')).rejects.toThrow(/no built-in recipe/)
  })

  it('checks requirements against capabilities', () => {
    const r = parseRecipe({ name: 'x', variants: [{ name: 'gpu', platforms: ['linux/amd64'], requires: { nvidia: true }, build: { context: '.', dockerfile: 'Dockerfile' } }] })
    const gpu = r.variants[0]!
    const caps = { platforms: [{ platform: 'linux/amd64', emulated: false }], nvidia: false }
    // Building an image that needs a GPU to run needs no GPU.
    expect(requirementsMet(gpu, caps)).toBe(true)
    expect(unmetRequirements(gpu, caps)).toEqual([])
    expect(requirementsMet(gpu, { ...caps, nvidia: true })).toBe(true)
    expect(requirementsMet(gpu, { ...caps, nvidia: true }, 'linux/arm64')).toBe(false)
    expect(unmetRequirements(gpu, caps, 'linux/arm64')[0]).toMatch(/a builder for linux\/arm64/)
    expect(() => findVariant(r, 'nope')).toThrow(TargetError)
  })
})
