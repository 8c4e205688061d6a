import { posix } from 'node:path'
import { DockerfileParser } from 'dockerfile-ast'
import type { Flag, Instruction } from 'dockerfile-ast'
import { expand } from './context.js'

/** More stages than any real build has: a bound on work for an untrusted file. */
const MAX_STAGES = 512

/** A `COPY`/`ADD` from the build context: sources relative to the context, destination in the image. */
export interface ContextCopy {
  /** Repository-relative directory the sources are relative to. */
  contextDir: string
  sources: string[]
  dest: string
  /** Whether the destination names a directory (ends with `/`, or several sources). */
  destIsDir: boolean
}

/** One `FROM` to the next, in one file. */
export interface Stage {
  /** Repository-relative file the stage is written in. */
  file: string
  /** Lower-case stage name, when it has one. */
  name?: string
  /** 1-based first and last line of the stage in its file. */
  start: number
  end: number
  /** The `FROM` image with build arguments expanded; a stage name, an image, or an include path. */
  from: string
  /** `COPY --from=` and `RUN --mount=...,from=` references, with the paths they read (`/` when unknown). */
  reads: Array<{ ref: string, paths: string[] }>
  /** Copies from the build context, in order. */
  copies: ContextCopy[]
  /** Tokens of each RUN, with the working directory it runs in: how a script the build runs is found. */
  runs: Array<{ workdir: string, tokens: string[] }>
}

export interface ParseStagesInit {
  file: string
  text: string
  /** Build argument values (a recipe's `args`, a template's globals); the file's own defaults fill the rest. */
  args: ReadonlyMap<string, string>
  /** Repository-relative directory that `COPY` sources are relative to. */
  contextDir: string
}

/** An instruction's arguments; the JSON form (`COPY ["a", "b"]`) as its strings. */
function argumentsOf (ins: Instruction): string[] {
  const json = (ins as unknown as { getJSONStrings?: () => Array<{ getJSONValue: () => string }> }).getJSONStrings?.() ?? []
  return json.length > 0 ? json.map(j => j.getJSONValue()) : ins.getArguments().map(a => a.getValue())
}

function flagValue (ins: Instruction, name: string): string | undefined {
  const flags = (ins as unknown as { getFlags?: () => Flag[] }).getFlags?.() ?? []
  return flags.find(f => f.getName() === name)?.getValue() ?? undefined
}

/** A token of a shell word as a path: quotes, separators and redirections stripped. */
function pathToken (raw: string): string {
  return raw.replace(/^[("'`<>|&;]+/, '').replace(/[)"'`;&|]+$/, '')
}

/** Splits a Dockerfile into stages, with what each reads from other stages and from the build context. */
export function parseStages (init: ParseStagesInit): Stage[] {
  const dockerfile = DockerfileParser.parse(init.text)
  const args = new Map<string, string>()
  for (const arg of dockerfile.getInitialARGs()) {
    const p = arg.getProperty()
    if (p == null) continue
    const v = p.getUnescapedValue()
    if (v != null) args.set(p.getName(), expand(v, args))
  }
  for (const [k, v] of init.args) args.set(k, v)
  const stages: Stage[] = []
  const lastWorkdir = new Map<Stage, string>()
  let current: Stage | undefined
  let workdir = '/'
  for (const ins of dockerfile.getInstructions()) {
    const keyword = ins.getKeyword()
    const line = ins.getRange().start.line + 1
    if (keyword === 'FROM') {
      if (stages.length >= MAX_STAGES) break
      if (current != null) current.end = line - 1
      const words = ins.getArguments().map(a => a.getValue())
      const asAt = words.findIndex(w => w.toUpperCase() === 'AS')
      const name = asAt >= 0 ? words[asAt + 1]?.toLowerCase() : undefined
      const image = words.find(w => !w.startsWith('--')) ?? ''
      current = { file: init.file, ...(name != null ? { name } : {}), start: line, end: Number.MAX_SAFE_INTEGER, from: expand(image, args), reads: [], copies: [], runs: [] }
      stages.push(current)
      // A stage built on another keeps its working directory; a new image starts at `/`.
      const base = stages.find(s => s !== current && s.name != null && s.name === current?.from.toLowerCase())
      workdir = base != null ? lastWorkdir.get(base) ?? '/' : '/'
      continue
    }
    if (current == null) continue
    const stage = current
    if (keyword === 'WORKDIR') {
      const dir = expand(ins.getArguments().map(a => a.getValue()).join(' '), args)
      workdir = posix.resolve(workdir, dir)
      lastWorkdir.set(stage, workdir)
    } else if (keyword === 'COPY' || keyword === 'ADD') {
      const words = argumentsOf(ins).map(a => expand(a, args))
      if (words.length < 2 || words.some(w => w.startsWith('<<'))) continue
      const sources = words.slice(0, -1)
      const rawDest = words[words.length - 1] ?? '.'
      const dest = posix.resolve(workdir, rawDest)
      const from = flagValue(ins, 'from')
      if (from != null) {
        stage.reads.push({ ref: expand(from, args).toLowerCase(), paths: sources.map(s => posix.resolve('/', s)) })
      } else {
        stage.copies.push({ contextDir: init.contextDir, sources: sources.filter(s => !/^[a-z]+:\/\//.test(s)), dest, destIsDir: rawDest.endsWith('/') || sources.length > 1 })
      }
    } else if (keyword === 'RUN') {
      const flags = (ins as unknown as { getFlags?: () => Flag[] }).getFlags?.() ?? []
      for (const f of flags) {
        if (f.getName() !== 'mount') continue
        const opts = new Map((f.getValue() ?? '').split(',').map(kv => { const i = kv.indexOf('='); return [kv.slice(0, i), kv.slice(i + 1)] as [string, string] }))
        const from = opts.get('from')
        if (from != null) stage.reads.push({ ref: expand(from, args).toLowerCase(), paths: [posix.resolve('/', opts.get('source') ?? opts.get('src') ?? '/')] })
      }
      stage.runs.push({ workdir, tokens: argumentsOf(ins).map(a => pathToken(expand(a, args))).filter(t => t !== '') })
    }
  }
  return stages
}

/** What of a stage reaches the final image: all of it (the target's `FROM` chain) or the paths copied out of it. */
export type Exposure = 'all' | Set<string>

/**
 * Stages of one build, in build order, with references already resolved to indexes
 * (`undefined`: an image, not a stage). A reference no stage can be shown to answer is `-1`.
 */
export interface StageGraph {
  stages: Stage[]
  base: Array<number | undefined>
  reads: Array<Array<{ stage: number | undefined, paths: string[] }>>
}

/**
 * Which stages a build of `target` needs, and how much of each reaches the final image.
 * A stage absent from the result is never built for this target. A reference that cannot
 * be resolved (`-1`) makes every stage count in full: nothing is dropped on a guess.
 */
export function reach (graph: StageGraph, target: number): Map<number, Exposure> {
  const out = new Map<number, Exposure>()
  const add = (i: number, paths: Exposure): boolean => {
    const had = out.get(i)
    if (had === 'all') return false
    if (paths === 'all') { out.set(i, 'all'); return true }
    const set = had ?? new Set<string>()
    const before = set.size
    for (const p of paths) set.add(p)
    out.set(i, set)
    return had == null || set.size !== before
  }
  add(target, 'all')
  // Stages only refer backwards, so one pass from the target down settles each in turn;
  // the loop repeats only to be safe with files that break that order.
  for (let round = 0; round < 4; round++) {
    let changed = false
    for (let i = graph.stages.length - 1; i >= 0; i--) {
      const exposure = out.get(i)
      if (exposure == null) continue
      const base = graph.base[i]
      if (base === -1 || (graph.reads[i] ?? []).some(r => r.stage === -1)) {
        for (let j = 0; j < graph.stages.length; j++) changed = add(j, 'all') || changed
        return out
      }
      // A stage's own base carries whatever of the stage reaches the image.
      if (base != null) changed = add(base, exposure === 'all' ? 'all' : new Set(exposure)) || changed
      for (const r of graph.reads[i] ?? []) if (r.stage != null) changed = add(r.stage, new Set(r.paths)) || changed
    }
    if (!changed) break
  }
  return out
}

function trimmed (path: string): string {
  // A glob reaches as far as the directory above its first wildcard.
  const at = path.search(/[*?[]/)
  const cut = at < 0 ? path : path.slice(0, path.lastIndexOf('/', at))
  const norm = posix.normalize(`/${cut}`).replace(/\/+$/, '')
  return norm === '' ? '/' : norm
}

/** Whether any of `copied` overlaps any of `left` (one is the other or lies below it). */
export function overlaps (copied: Iterable<string>, left: readonly string[]): boolean {
  for (const c of copied) {
    const a = trimmed(c)
    for (const l of left) {
      const b = trimmed(l)
      if (a === '/' || b === '/' || a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`)) return true
    }
  }
  return false
}

/**
 * The repository paths a RUN may name through what the stage copied from the build context:
 * `COPY . .` then `RUN ./build` in `/src` names `<context>/build`. Candidates: a path that is
 * no file of the repository matches nothing.
 */
export function runFiles (stage: Stage, inherited: ContextCopy[]): Set<string> {
  const out = new Set<string>()
  const copies = [...inherited, ...stage.copies]
  for (const run of stage.runs) {
    for (const token of run.tokens) {
      if (!token.includes('/') && !token.includes('.')) continue
      const abs = posix.resolve(run.workdir, token)
      for (const c of copies) {
        for (const source of c.sources) {
          const src = posix.normalize(source).replace(/\/+$/, '')
          const repo = (rel: string): string => posix.normalize(posix.join(c.contextDir, rel)).replace(/^\.\/?/, '')
          // Whether a source is a file or a directory is not known here: both readings are kept, and only real scripts match.
          if (!source.endsWith('/') && (abs === c.dest || (c.destIsDir && abs === posix.join(c.dest, posix.basename(src))))) out.add(repo(src))
          if (abs.startsWith(`${c.dest}/`)) out.add(repo(posix.join(src, abs.slice(c.dest.length + 1))))
        }
      }
    }
  }
  return out
}
