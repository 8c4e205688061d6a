import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parse } from 'yaml'
import { RecipeError } from './errors.js'
import type { Recipe } from './recipe.js'

/** One image a release publishes: a recipe variant name and a platform. */
export interface PublishedTarget {
  variant: string
  platform: string
}


const WORKFLOWS_DIR = '.github/workflows'
/** The workflows come with the release being rebuilt: everything read from them is bounded. */
const MAX_WORKFLOW_FILES = 64
const MAX_WORKFLOW_BYTES = 256 * 1024
const MAX_MATRIX_ENTRIES = 256
const MAX_TARGETS = 1024
const BASE_WORKFLOW = './.github/workflows/image_base.yml'
const APP_WORKFLOW = './.github/workflows/image_app.yml'
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/

type Doc = Record<string, unknown>
const isMap = (v: unknown): v is Doc => v != null && typeof v === 'object' && !Array.isArray(v)

async function readWorkflow (dir: string, file: string): Promise<Doc> {
  const path = join(dir, file)
  const size = (await stat(path)).size
  if (size > MAX_WORKFLOW_BYTES) throw new RecipeError('/targetsFrom', `${WORKFLOWS_DIR}/${file} is ${size} bytes, over the limit of ${MAX_WORKFLOW_BYTES}`)
  let doc: unknown
  try {
    doc = parse(await readFile(path, 'utf8'), { maxAliasCount: 100 })
  } catch (err) {
    throw new RecipeError('/targetsFrom', `${WORKFLOWS_DIR}/${file} is not YAML: ${(err as Error).message}`)
  }
  return isMap(doc) ? doc : {}
}

/** Whether a workflow runs when a tag is pushed (`on: push: tags`): the release workflows. */
function runsOnTags (doc: Doc): boolean {
  // YAML 1.1 readers take `on` as true; the yaml library (1.2) keeps the key `on`.
  const on = doc.on ?? doc.true
  if (!isMap(on)) return false
  const push = on.push
  return isMap(push) && push.tags != null
}

/** The default of a reusable workflow's input (`on.workflow_call.inputs.NAME.default`). */
function inputDefault (doc: Doc | undefined, input: string): string {
  const on = doc?.on ?? doc?.true
  const call = isMap(on) ? on.workflow_call : undefined
  const inputs = isMap(call) ? call.inputs : undefined
  const spec = isMap(inputs) ? inputs[input] : undefined
  const value = isMap(spec) ? spec.default : undefined
  return typeof value === 'string' ? value : ''
}

/**
 * A `with:` value with `${{ matrix.X }}` filled in from one matrix entry. Any other expression
 * is refused: its value is not known from the files alone.
 */
function expand (value: unknown, matrix: Doc, where: string): string {
  if (value == null) return ''
  if (typeof value !== 'string') throw new RecipeError('/targetsFrom', `${where}: expected a string, got ${JSON.stringify(value)}`)
  return value.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
    const m = /^matrix\.([A-Za-z0-9_-]+)$/.exec(expr)
    if (m == null) throw new RecipeError('/targetsFrom', `${where}: cannot evaluate \${{ ${expr} }}`)
    const v = matrix[m[1]!]
    return v == null ? '' : String(v)
  })
}

function platformsOf (value: string, fallback: string, where: string): string[] {
  const list = (value !== '' ? value : fallback !== '' ? fallback : 'linux/amd64').split(',').map(p => p.trim()).filter(p => p !== '')
  for (const p of list) if (!PLATFORM.test(p)) throw new RecipeError('/targetsFrom', `${where}: ${JSON.stringify(p)} is not a platform such as linux/amd64`)
  return list
}

/**
 * The images a commit's tag-triggered workflows publish, as recipe targets. Reads Neko's
 * shape: jobs that call `image_base.yml` (variant `base`, or the `flavor` input: `nvidia`,
 * `intel`) and jobs that call `image_app.yml` once per `strategy.matrix.include` entry
 * (variant `<name>`, or `<flavor>-<name>`); platforms from the `platforms` input, else the
 * called workflow's default. Workflows that do not run on tags (Docker Hub's, on master) are
 * not a release's.
 */
export async function publishedTargets (checkoutDir: string): Promise<PublishedTarget[]> {
  const dir = join(checkoutDir, WORKFLOWS_DIR)
  const files = (await readdir(dir).catch(() => [] as string[])).filter(f => /\.ya?ml$/.test(f)).sort()
  if (files.length === 0) throw new RecipeError('/targetsFrom', `the commit has no ${WORKFLOWS_DIR} to read the published targets from`)
  if (files.length > MAX_WORKFLOW_FILES) throw new RecipeError('/targetsFrom', `${WORKFLOWS_DIR} holds ${files.length} workflows, over the limit of ${MAX_WORKFLOW_FILES}`)
  const docs = new Map<string, Doc>()
  for (const f of files) docs.set(f, await readWorkflow(dir, f))
  const called = (ref: string): Doc | undefined => docs.get(ref.slice(`./${WORKFLOWS_DIR}/`.length))

  const seen = new Set<string>()
  const out: PublishedTarget[] = []
  const add = (variant: string, platforms: string[], where: string): void => {
    if (!NAME.test(variant)) throw new RecipeError('/targetsFrom', `${where}: ${JSON.stringify(variant)} is not a variant name`)
    for (const platform of platforms) {
      const key = `${variant} ${platform}`
      if (seen.has(key)) continue
      seen.add(key)
      out.push({ variant, platform })
      if (out.length > MAX_TARGETS) throw new RecipeError('/targetsFrom', `the workflows publish over ${MAX_TARGETS} targets`)
    }
  }
  for (const [file, doc] of docs) {
    if (!runsOnTags(doc) || !isMap(doc.jobs)) continue
    for (const [jobName, job] of Object.entries(doc.jobs)) {
      if (!isMap(job) || typeof job.uses !== 'string') continue
      const where = `${WORKFLOWS_DIR}/${file} job ${jobName}`
      const withs = isMap(job.with) ? job.with : {}
      if (job.uses === BASE_WORKFLOW) {
        const flavor = expand(withs.flavor, {}, `${where} flavor`)
        add(flavor !== '' ? flavor : 'base', platformsOf(expand(withs.platforms, {}, `${where} platforms`), inputDefault(called(job.uses), 'platforms'), where), where)
      } else if (job.uses === APP_WORKFLOW) {
        const strategy = isMap(job.strategy) ? job.strategy : {}
        const matrix = isMap(strategy.matrix) ? strategy.matrix : {}
        const include = Array.isArray(matrix.include) ? matrix.include : [{}]
        if (include.length > MAX_MATRIX_ENTRIES) throw new RecipeError('/targetsFrom', `${where}: ${include.length} matrix entries, over the limit of ${MAX_MATRIX_ENTRIES}`)
        for (const [i, entry] of include.entries()) {
          const m = isMap(entry) ? entry : {}
          const at = `${where} matrix entry ${i + 1}`
          const name = expand(withs.name, m, `${at} name`)
          if (name === '') throw new RecipeError('/targetsFrom', `${at}: no app name`)
          const flavor = expand(withs.flavor, m, `${at} flavor`)
          add(flavor !== '' ? `${flavor}-${name}` : name, platformsOf(expand(withs.platforms, m, `${at} platforms`), inputDefault(called(job.uses), 'platforms'), at), at)
        }
      }
    }
  }
  if (out.length === 0) throw new RecipeError('/targetsFrom', `no tag-triggered workflow in ${WORKFLOWS_DIR} calls image_base.yml or image_app.yml`)
  return out
}

/**
 * The targets one release of `recipe` publishes, in recipe order: every variant × platform,
 * or, with `targetsFrom: "workflows"`, those the checkout's workflows publish. A published
 * target the recipe cannot rebuild is a RecipeError naming it: the release would otherwise be
 * judged on fewer images than it ships.
 */
export async function releaseTargets (recipe: Recipe, checkoutDir: string | undefined): Promise<PublishedTarget[]> {
  const all = recipe.variants.flatMap(v => v.platforms.map(platform => ({ variant: v.name, platform })))
  if (recipe.targetsFrom == null) return all
  if (checkoutDir == null) throw new RecipeError('/targetsFrom', `recipe ${recipe.name} reads its targets from the release's workflows: a checkout is needed`)
  const published = new Set((await publishedTargets(checkoutDir)).map(t => `${t.variant} ${t.platform}`))
  const known = new Set(all.map(t => `${t.variant} ${t.platform}`))
  const missing = [...published].filter(k => !known.has(k))
  if (missing.length > 0) throw new RecipeError('/targetsFrom', `the release's workflows publish ${missing.join(', ')}, which recipe ${recipe.name} does not rebuild`)
  return all.filter(t => published.has(`${t.variant} ${t.platform}`))
}
