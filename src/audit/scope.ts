import { posix } from 'node:path'
import type { Recipe, Variant } from '../node/rebuilder/index.js'
import { DIGEST_PINNED } from './context.js'
import { ruleById } from './registry.js'
import { BASE_IMAGE_UNPINNED } from './rules/base-images.js'
import { overlaps, parseStages, reach, runFiles } from './stages.js'
import type { ContextCopy, Exposure, Stage, StageGraph } from './stages.js'
import type { AuditedFile, AuditFileError, Finding } from './types.js'

/** One build the audit judges findings against: a recipe variant, or a Dockerfile on its own. */
interface Build {
  label: string
  graph: StageGraph
  target: number
  /** `FROM` lines (file and line) whose image the recipe hands over by digest, with why. */
  pinned: Map<string, string>
}

export interface ScopeInit {
  recipe?: Recipe
  /** Every file the audit found. */
  files: readonly AuditedFile[]
  /** A repository file's text, or undefined when it cannot be read. */
  text: (path: string) => string | undefined
}

export interface Scope {
  /** Why no release build is affected by a finding; undefined when it stands. */
  judge: (f: Finding) => string | undefined
  errors: AuditFileError[]
}

const isInclude = (image: string): boolean => /^\.{0,2}\//.test(image)
const key = (file: string, line: number): string => `${file}\0${line}`

/** Resolves `FROM` and `--from` references to stages; `-1` where a build argument leaves it unknown. */
function link (stages: Stage[], names: (i: number) => ReadonlyMap<string, number>): StageGraph {
  const resolve = (i: number, ref: string): number | undefined => {
    const own = names(i)
    const hit = own.get(ref.toLowerCase())
    if (hit != null) return hit
    if (/^\d+$/.test(ref)) {
      const sameFile = stages.filter(s => s.file === stages[i]?.file)
      const s = sameFile[Number(ref)]
      return s != null ? stages.indexOf(s) : -1
    }
    return ref.includes('$') ? -1 : undefined
  }
  return {
    stages,
    base: stages.map((s, i) => resolve(i, s.from)),
    reads: stages.map((s, i) => s.reads.map(r => ({ stage: resolve(i, r.ref), paths: r.paths })))
  }
}

/** Names visible to each stage: earlier stages of its own file, then those given in `outer`. */
function scopedNames (stages: Stage[], outer: (i: number) => ReadonlyMap<string, number> = () => new Map()): (i: number) => ReadonlyMap<string, number> {
  return (i: number) => {
    const names = new Map(outer(i))
    for (let j = 0; j < i; j++) {
      const s = stages[j]
      if (s != null && s.file === stages[i]?.file && s.name != null) names.set(s.name, j)
    }
    return names
  }
}

function plainBuild (file: string, text: string, args: ReadonlyMap<string, string>, contextDir: string): { stages: Stage[], graph: StageGraph } {
  const stages = parseStages({ file, text, args, contextDir })
  return { stages, graph: link(stages, scopedNames(stages)) }
}

/**
 * A template build as Neko's generator writes it: `FROM ./server/ AS server` pastes
 * `server/Dockerfile` (its context `server/`, its last stage renamed `server`) in place.
 */
function templateBuild (file: string, text: string, args: ReadonlyMap<string, string>, contextDir: string, choose: (include: string) => string | undefined, read: (path: string) => string | undefined): StageGraph | undefined {
  const outer = parseStages({ file, text, args, contextDir })
  const stages: Stage[] = []
  const topNames = new Map<string, number>()
  const outerOf = new Map<number, ReadonlyMap<string, number>>()
  for (const t of outer) {
    if (isInclude(t.from)) {
      const path = choose(t.from)
      const incText = path == null ? undefined : read(path)
      if (path == null || incText == null) return undefined
      const alias = (t.name ?? '').toUpperCase().replace(/-/g, '_')
      // The generator prefixes an included file's global ARGs with its alias: SERVER_BASE_IMAGE sets server's BASE_IMAGE.
      const incArgs = new Map<string, string>()
      for (const [k, v] of args) if (alias !== '' && k.startsWith(`${alias}_`)) incArgs.set(k.slice(alias.length + 1), v)
      const first = stages.length
      for (const s of parseStages({ file: path, text: incText, args: incArgs, contextDir: posix.dirname(path) })) {
        outerOf.set(stages.length, new Map(topNames))
        stages.push(s)
      }
      if (stages.length === first) return undefined
      // The template's stage continues the included file's last stage.
      outerOf.set(stages.length, new Map([...topNames, ['\0last', stages.length - 1]]))
      stages.push({ ...t, from: '\0last' })
    } else {
      outerOf.set(stages.length, new Map(topNames))
      stages.push(t)
    }
    if (t.name != null) topNames.set(t.name, stages.length - 1)
  }
  const own = scopedNames(stages, i => outerOf.get(i) ?? new Map())
  return link(stages, i => {
    // A template's own stages see only template-level names; an included stage sees its file first.
    const s = stages[i]
    if (s?.file === file) return outerOf.get(i) ?? new Map()
    return own(i)
  })
}

/** Which file an include path names: a directory means its Dockerfile. */
function includePath (template: string, image: string, has: (path: string) => boolean): string {
  const joined = posix.normalize(posix.join(posix.dirname(template), image))
  return image.endsWith('/') || !has(joined) ? posix.join(joined, 'Dockerfile') : joined
}

/** The template a prepare step turns into the variant's Dockerfile, with the environment it runs in. */
function generatingTemplate (variant: Variant, isTemplate: (path: string) => boolean): { template: string, env: Map<string, string> } | undefined {
  for (const step of variant.prepare ?? []) {
    if (step.stdout == null || posix.normalize(step.stdout) !== posix.normalize(variant.build.dockerfile)) continue
    const template = step.command.map(a => posix.normalize(a)).find(isTemplate)
    if (template != null) return { template, env: new Map(Object.entries(step.env ?? {})) }
  }
  return undefined
}

function describe (stage: Stage | undefined, index: number): string {
  return stage?.name != null ? `stage ${stage.name}` : `stage ${index + 1}`
}

/**
 * Decides, from a recipe, which findings no release build is affected by: files none of its
 * builds reads, stages the built target never uses, and leftovers in stages whose files reach
 * the final image only through `COPY --from` of other paths. Without a recipe every finding
 * stands (any stage may be someone's `--target`), and nothing is dropped on a guess: a recipe
 * whose builds cannot be followed keeps every finding.
 */
export function createScope (init: ScopeInit): Scope {
  const errors: AuditFileError[] = []
  const kinds = new Map(init.files.map(f => [f.path, f.kind]))
  const has = (path: string): boolean => kinds.has(path) || init.text(path) != null
  const templates = new Set(init.files.filter(f => f.kind === 'template').map(f => f.path))
  const builds: Build[] = []
  /** Files the recipe's builds read; undefined when every file counts (no recipe, or one the audit cannot follow). */
  let read: Set<string> | undefined
  const recipe = init.recipe

  const addBuild = (label: string, graph: StageGraph, targetName: string | undefined, pinned: Map<string, string>, where: string): void => {
    let target = graph.stages.length - 1
    if (targetName != null) {
      // The target is the last stage of that name (a template's own stage continues an include).
      target = graph.stages.findLastIndex(s => s.name === targetName.toLowerCase())
      if (target < 0) { errors.push({ path: where, message: `${label}: target stage ${targetName} is not defined` }); return }
    }
    if (target >= 0) builds.push({ label, graph, target, pinned })
  }

  if (recipe != null) {
    read = new Set()
    for (const variant of recipe.variants) {
      const label = `recipe ${recipe.name} variant ${variant.name}`
      const args = new Map(Object.entries(variant.build.args ?? {}))
      const pinned = new Map<string, string>()
      // An argument the recipe fills with another variant's image or a digest pins the FROMs that use it.
      const pinnedBy = new Map<string, string>()
      for (const [arg, base] of Object.entries(variant.from ?? {})) {
        pinnedBy.set(arg, `${label} sets ${arg} to variant ${base}, rebuilt from the same commit and handed over by digest`)
        args.set(arg, `neko-rebuilder-variant-${base}`)
      }
      for (const [arg, value] of args) if (DIGEST_PINNED.test(value)) pinnedBy.set(arg, `${label} sets ${arg} to ${value}`)
      // Only in the file the recipe builds: an included file's arguments are its own (the generator renames them).
      const markPinned = (stages: Stage[], file: string): void => {
        for (const s of stages.filter(s => s.file === file)) {
          const text = init.text(s.file)?.split('\n')[s.start - 1] ?? ''
          const image = /^\s*FROM\s+(?:--\S+\s+)*(\S+)/i.exec(text)?.[1] ?? ''
          const used = [...image.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)].map(m => m[1] ?? '')
          if (used.length > 0 && used.every(u => pinnedBy.has(u))) pinned.set(key(s.file, s.start), pinnedBy.get(used[0] ?? '') ?? '')
        }
      }
      const dockerfile = posix.normalize(variant.build.dockerfile)
      const context = posix.normalize(variant.build.context)
      // A prepare step that writes the Dockerfile wins over a file of that name in the checkout.
      const generated = generatingTemplate(variant, path => templates.has(path) || (/\.tmpl$/.test(path) && init.text(path) != null))
      if (generated != null) {
        const text = init.text(generated.template)
        if (text == null) {
          errors.push({ path: generated.template, message: `${label}: the template cannot be read, so what this build reads is not known; no finding is skipped` })
          read = undefined
          break
        }
        read.add(generated.template)
        const env = new Map([...generated.env, ...args])
        const graph = templateBuild(generated.template, text, env, context, image => {
          const expanded = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (whole, name: string) => env.get(name) ?? whole)
          return expanded.includes('$') ? undefined : includePath(generated.template, expanded, has)
        }, init.text)
        if (graph == null) {
          errors.push({ path: generated.template, message: `${label}: an include of the template cannot be resolved, so what this build reads is not known; no finding is skipped` })
          read = undefined
          break
        }
        for (const s of graph.stages) read.add(s.file)
        markPinned(graph.stages, generated.template)
        addBuild(label, graph, variant.build.target, pinned, generated.template)
      } else {
        const text = init.text(dockerfile)
        if (text == null) {
          errors.push({ path: dockerfile, message: `${label}: the Dockerfile is not in the repository and no prepare step writes it from a template here, so what this build reads is not known; no finding is skipped` })
          read = undefined
          break
        }
        read.add(dockerfile)
        const { stages, graph } = plainBuild(dockerfile, text, args, context)
        markPinned(stages, dockerfile)
        addBuild(label, graph, variant.build.target, pinned, dockerfile)
      }
    }
  }

  // A recipe the audit cannot follow is no ground to drop anything.
  if (read == null) builds.length = 0

  const reached = builds.map(b => reach(b.graph, b.target))
  // Scripts a RUN of a built stage runs, through what the stage copied from its context.
  if (read != null) {
    builds.forEach((b, n) => {
      const copies = new Map<number, ContextCopy[]>()
      b.graph.stages.forEach((s, i) => {
        const base = b.graph.base[i]
        const inherited = base != null && base >= 0 ? copies.get(base) ?? [] : []
        copies.set(i, [...inherited, ...s.copies])
        if (reached[n]?.has(i) === true) for (const file of runFiles(s, inherited)) read?.add(file)
      })
    })
  }

  const judgeStage = (f: Finding): string | undefined => {
    const reasons: string[] = []
    let seen = false
    for (const [n, b] of builds.entries()) {
      const i = b.graph.stages.findIndex(s => s.file === f.path && s.start <= f.line && f.line <= s.end)
      if (i < 0) continue
      seen = true
      const stage = b.graph.stages[i]
      const exposure: Exposure | undefined = reached[n]?.get(i)
      const pin = f.ruleId === BASE_IMAGE_UNPINNED && stage?.start === f.line ? b.pinned.get(key(f.path, f.line)) : undefined
      if (exposure == null) reasons.push(`${describe(stage, i)} is not built for ${b.label}`)
      else if (pin != null) reasons.push(pin)
      else {
        const leaves = ruleById(f.ruleId)?.leaves
        if (leaves == null || exposure === 'all' || overlaps(exposure, leaves)) return undefined
        reasons.push(`${describe(stage, i)} reaches ${b.label} only through COPY --from of ${[...exposure].join(', ')}; ${leaves.join(', ')} stays behind`)
      }
    }
    return seen ? reasons[0] : undefined
  }

  return {
    errors,
    judge: (f: Finding) => {
      if (read != null && recipe != null && !read.has(f.path)) {
        const kind = kinds.get(f.path)
        if (kind === 'workflow') return `recipe ${recipe.name} rebuilds without the workflows`
        if (kind === 'script') return `no stage that recipe ${recipe.name} builds runs this script`
        return `no variant of recipe ${recipe.name} builds this file`
      }
      return judgeStage(f)
    }
  }
}
