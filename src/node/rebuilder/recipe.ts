import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ErrorObject } from 'ajv'
import type { Digest } from '../../protocol/types.js'
import { RecipeError, TargetError } from './errors.js'
import { recipeSchema } from './recipe-schema.js'

/** A container run before the build, e.g. to generate the Dockerfile from a template. */
export interface PrepareStep {
  /** Pinned by digest: `<repository>[:tag]@sha256:<64 hex>`. */
  image: string
  command: string[]
  env?: Record<string, string>
  /** Path inside the checkout that receives the command's stdout. */
  stdout?: string
}

export interface BuildSpec {
  /** Build context, relative to the checkout root. */
  context: string
  /** Dockerfile, relative to the checkout root. */
  dockerfile: string
  target?: string
  args?: Record<string, string>
}

export interface Variant {
  name: string
  platforms: string[]
  /** The published image repository for this variant, e.g. `ghcr.io/m1k1o/neko/base`. */
  image?: string
  prepare?: PrepareStep[]
  build: BuildSpec
  /**
   * `nvidia`: running the image needs an NVIDIA GPU. Building it needs none (the driver is
   * injected only when a container runs), so this never keeps a node from building it.
   */
  requires?: { nvidia?: boolean }
  /** Build arg name → variant whose result (by digest) that arg names, e.g. `{ "BASE_IMAGE": "base" }`. */
  from?: Record<string, string>
  /** A command run in the rebuilt image; its outcome is signed as an in-toto Test Result (smoke.ts). */
  smoke?: SmokeTest
}

/** A variant's smoke test: run in a container of the rebuilt image, passed when it exits 0. */
export interface SmokeTest {
  /** The container's command (no shell unless it names one). */
  command: string[]
  /** Run with the host's NVIDIA GPU: only nodes with an NVIDIA runtime or CDI devices run it. */
  gpu?: boolean
  /** Default 300. */
  timeoutSeconds?: number
}

export interface Recipe {
  name: string
  /**
   * `workflows`: a release publishes only the targets its own tag-triggered workflows build
   * (workflow-targets.ts); the variants are how to rebuild each, a superset across releases.
   */
  targetsFrom?: 'workflows'
  variants: Variant[]
}

/** What a node can build; see `Rebuilder.capabilities()`. */
export interface PlatformCapabilities {
  platforms: Array<{ platform: string, emulated: boolean }>
  nvidia: boolean
}

/** The file a repository may carry to describe its own rebuild. */
export const REPOSITORY_RECIPE_FILE = 'neko-rebuilder.json'
/** Platforms of the implicit `default` variant (root Dockerfile) when no platform is asked for. */
const DEFAULT_PLATFORMS = ['linux/amd64', 'linux/arm64']

const RECIPES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../recipes')
const BUILTIN_NAME = /^[a-z][a-z0-9-]{0,63}$/
/** Recipes arrive from repositories too: bound the file before parsing it. */
const MAX_RECIPE_BYTES = 256 * 1024

const ajv = new Ajv({ allErrors: false, strict: true })
const validateSchema = ajv.compile(recipeSchema)

function schemaError (err: ErrorObject): RecipeError {
  const extra = err.keyword === 'additionalProperties'
    ? `/${String((err.params as { additionalProperty: string }).additionalProperty)}`
    : err.keyword === 'required' ? `/${String((err.params as { missingProperty: string }).missingProperty)}` : ''
  const field = `${err.instancePath}${extra}` === '' ? '/' : `${err.instancePath}${extra}`
  const message = err.keyword === 'additionalProperties' ? 'is not a known field' : err.keyword === 'required' ? 'is required' : (err.message ?? 'is invalid')
  return new RecipeError(field, message)
}

/** A checkout-relative path that cannot leave the checkout. */
function checkRelative (field: string, value: string): void {
  if (isAbsolute(value) || value.split(/[\\/]/).includes('..')) {
    throw new RecipeError(field, `must be a path inside the repository, got ${JSON.stringify(value)}`)
  }
}

/** Validates a parsed recipe (schema, then cross-references) and returns it typed. Throws RecipeError naming the JSON path. */
export function parseRecipe (value: unknown): Recipe {
  if (!validateSchema(value)) {
    const first = validateSchema.errors?.[0]
    throw first != null ? schemaError(first) : new RecipeError('/', 'is invalid')
  }
  const recipe = value as unknown as Recipe
  const names = new Map<string, number>()
  recipe.variants.forEach((v, i) => {
    if (names.has(v.name)) throw new RecipeError(`/variants/${i}/name`, `duplicates variant ${JSON.stringify(v.name)} at /variants/${names.get(v.name)}`)
    names.set(v.name, i)
    checkRelative(`/variants/${i}/build/context`, v.build.context)
    checkRelative(`/variants/${i}/build/dockerfile`, v.build.dockerfile)
    v.prepare?.forEach((p, j) => { if (p.stdout != null) checkRelative(`/variants/${i}/prepare/${j}/stdout`, p.stdout) })
    if (new Set(v.platforms).size !== v.platforms.length) throw new RecipeError(`/variants/${i}/platforms`, 'lists a platform twice')
  })
  recipe.variants.forEach((v, i) => {
    for (const [arg, base] of Object.entries(v.from ?? {})) {
      const field = `/variants/${i}/from/${arg}`
      const j = names.get(base)
      if (j == null) throw new RecipeError(field, `names unknown variant ${JSON.stringify(base)}`)
      if (j === i) throw new RecipeError(field, 'a variant cannot be built from itself')
      const other = recipe.variants[j]
      if (other?.from != null && Object.keys(other.from).length > 0) throw new RecipeError(field, `variant ${JSON.stringify(base)} is itself built from another variant; only one level is supported`)
      for (const p of v.platforms) {
        if (other != null && !other.platforms.includes(p)) throw new RecipeError(field, `variant ${JSON.stringify(base)} is not built for ${p}`)
      }
    }
  })
  return recipe
}

/**
 * The implicit recipe of a repository with neither a recipe file nor a recipe given: its root
 * Dockerfile, for the default platforms and any other asked for.
 */
export function defaultRecipe (requested: string | readonly string[] = []): Recipe {
  const platforms = [...new Set([...DEFAULT_PLATFORMS, ...(typeof requested === 'string' ? [requested] : requested)])]
  return { name: 'default', variants: [{ name: 'default', platforms: [...platforms], build: { context: '.', dockerfile: 'Dockerfile' } }] }
}

async function readRecipeFile (path: string): Promise<Recipe> {
  let text: string
  try {
    const info = await stat(path)
    if (info.size > MAX_RECIPE_BYTES) throw new RecipeError('/', `file ${path} is ${info.size} bytes, over the limit of ${MAX_RECIPE_BYTES}`)
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (err instanceof RecipeError) throw err
    throw new RecipeError('/', `cannot read ${path}: ${(err as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new RecipeError('/', `${path} is not JSON: ${(err as Error).message}`)
  }
  return parseRecipe(json)
}

async function exists (path: string): Promise<boolean> {
  return await stat(path).then(() => true, () => false)
}

/**
 * Loads a recipe: a built-in name (`neko`), a file path, or, when `spec` is undefined, the
 * checkout's own `neko-rebuilder.json`, else the implicit `default` recipe (root Dockerfile).
 */
export async function loadRecipe (spec: string | undefined, checkoutDir?: string, opts: { /** Asked for: the implicit recipe lists it (them) too. */ platform?: string | readonly string[] } = {}): Promise<Recipe> {
  if (spec == null) {
    if (checkoutDir != null && await exists(join(checkoutDir, REPOSITORY_RECIPE_FILE))) {
      return await readRecipeFile(join(checkoutDir, REPOSITORY_RECIPE_FILE))
    }
    return defaultRecipe(opts.platform)
  }
  if (BUILTIN_NAME.test(spec) && !spec.includes('/')) {
    const builtin = join(RECIPES_DIR, `${spec}.json`)
    if (await exists(builtin)) return await readRecipeFile(builtin)
    if (!await exists(spec)) throw new RecipeError('/', `no built-in recipe named ${JSON.stringify(spec)} and no such file`)
  }
  return await readRecipeFile(resolve(spec))
}

/** JSON with object keys sorted and no whitespace, so equal recipes hash equal. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
}

/** `sha256:` of the recipe's canonical JSON. */
export function recipeDigest (recipe: Recipe): Digest {
  return `sha256:${createHash('sha256').update(canonicalJson(recipe)).digest('hex')}`
}

export function findVariant (recipe: Recipe, name: string | undefined): Variant {
  const chosen = name ?? (recipe.variants.length === 1 ? recipe.variants[0]?.name : undefined)
  if (chosen == null) throw new TargetError(`recipe ${recipe.name} has several variants (${recipe.variants.map(v => v.name).join(', ')}); choose one`)
  const variant = recipe.variants.find(v => v.name === chosen)
  if (variant == null) throw new TargetError(`recipe ${recipe.name} has no variant ${JSON.stringify(chosen)} (it has ${recipe.variants.map(v => v.name).join(', ')})`)
  return variant
}

/** Why this node cannot build the variant (for one platform, or for any of its platforms); empty when it can. */
export function unmetRequirements (variant: Variant, capabilities: PlatformCapabilities, platform?: string): string[] {
  // A GPU is not among them: building an nvidia variant needs none (Variant.requires).
  const missing: string[] = []
  const buildable = new Set(capabilities.platforms.map(p => p.platform))
  const wanted = platform != null ? [platform] : variant.platforms
  if (!wanted.some(p => buildable.has(p))) missing.push(`a builder for ${wanted.join(' or ')} (this node builds ${[...buildable].join(', ') || 'nothing'})`)
  return missing
}

/** Whether this node can build the variant (for `platform`, or for at least one of its platforms). */
export function requirementsMet (variant: Variant, capabilities: PlatformCapabilities, platform?: string): boolean {
  return unmetRequirements(variant, capabilities, platform).length === 0
}
