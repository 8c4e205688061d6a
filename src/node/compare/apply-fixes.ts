import { DockerfileParser } from 'dockerfile-ast'
import { CAUSES, type CauseId } from '../../protocol/causes.js'
import type { ImageDiff, LayerDiff } from './diff.js'

export interface AppliedFix {
  /** Layer index the fix is for. */
  layer: number
  /** 1-based line of the Dockerfile where the RUN instruction ends. */
  line: number
  causes: CauseId[]
  /** The shell text appended to the RUN. */
  added: string
}

export interface FixResult {
  dockerfile: string
  applied: AppliedFix[]
  /** Causes whose fix is not a removal, or whose layer's RUN was not found: fix by hand. */
  manual: Array<{ layer: number, cause: CauseId }>
}

/** `RUN |2 A=1 B=2 /bin/sh -c apt-get ... # buildkit` → `apt-get ...`, whitespace collapsed. */
export function stepCommand (step: string): string | undefined {
  const m = /^RUN (?:\|\d+ (?:\S+=\S* )*)?(?:\/bin\/sh -c )?([\s\S]*?)(?: # buildkit)?$/.exec(step)
  if (m?.[1] == null) return undefined
  return m[1].replace(/\.\.\.$/, '').replace(/\s+/g, ' ').trim()
}

/** The command of a RUN as BuildKit records it: continuations joined, comment lines dropped. */
function runCommand (lines: string[]): string {
  const body = lines.filter((l, i) => i === 0 || !/^\s*#/.test(l)).join('\n').replace(/\\\r?\n/g, ' ')
  return body.replace(/^\s*RUN\s+/i, '').replace(/\s+/g, ' ').trim()
}

/**
 * For a cause whose fix removes directories of a name (`__pycache__`): a `find` that removes
 * them below the deepest directory holding every differing one of the layer. Which files
 * differ changes from one pair of builds to the next (a .pyc that records a source time of
 * the same second is equal), so the removal covers the tree the step wrote, not the files seen;
 * it stays at least two levels deep, so the lower layers' directories are left alone. Undefined
 * when the layer's paths were not all listed (past --max-paths) or no such directory holds them.
 */
function findIn (layer: LayerDiff, id: CauseId): string | undefined {
  const name = CAUSES[id]?.removeDirsNamed
  if (name == null || layer.omitted > 0) return undefined
  const parents: string[][] = []
  for (const c of layer.changes) {
    if (c.cause?.id !== id) continue
    const parts = c.path.split('/')
    const at = parts.indexOf(name)
    if (at === -1) return undefined
    parents.push(parts.slice(0, at))
  }
  if (parents.length === 0) return undefined
  const common: string[] = []
  for (let i = 0; parents.every(p => p[i] != null && p[i] === parents[0]?.[i]); i++) common.push(parents[0]?.[i] as string)
  if (common.length < 2) return undefined
  return `find /${common.join('/')} -name ${name} -prune -exec rm -rf {} +`
}

/**
 * Applies the removals of the leftover causes `diff` found to the RUN instructions that made
 * the differing layers: each RUN gets `; rm -rf PATHS` appended, so the files never reach the
 * layer. Causes whose fix is not a removal are returned as `manual`.
 */
export function applyFixes (dockerfile: string, diff: ImageDiff): FixResult {
  const lines = dockerfile.split('\n')
  const runs = DockerfileParser.parse(dockerfile).getInstructions()
    .filter(i => i.getKeyword() === 'RUN')
    .map(i => {
      const r = i.getRange()
      return { end: r.end.line, command: runCommand(lines.slice(r.start.line, r.end.line + 1)) }
    })
  const applied: AppliedFix[] = []
  const manual: FixResult['manual'] = []
  const edits = new Map<number, { layer: number, causes: CauseId[], paths: string[], finds: string[] }>()
  for (const layer of diff.layers) {
    const ids = Object.keys(layer.causeCounts) as CauseId[]
    const removable = ids.filter(id => CAUSES[id]?.remove != null || findIn(layer, id) != null)
    for (const id of ids) if (!removable.includes(id)) manual.push({ layer: layer.index, cause: id })
    if (removable.length === 0) continue
    const cmd = layer.step != null ? stepCommand(layer.step) : undefined
    // Long steps are shortened in history: compare on what both have.
    const run = cmd == null || cmd === '' ? undefined : runs.find(r => r.command.startsWith(cmd.slice(0, 200)) || cmd.startsWith(r.command.slice(0, 200)))
    if (run == null) { for (const id of removable) manual.push({ layer: layer.index, cause: id }); continue }
    const e = edits.get(run.end) ?? { layer: layer.index, causes: [], paths: [], finds: [] }
    for (const id of removable) {
      e.causes.push(id)
      for (const p of CAUSES[id].remove ?? []) if (!e.paths.includes(p)) e.paths.push(p)
      const find = findIn(layer, id)
      if (find != null && !e.finds.includes(find)) e.finds.push(find)
    }
    edits.set(run.end, e)
  }
  for (const [end, e] of [...edits].sort((x, y) => y[0] - x[0])) {
    const added = [...(e.paths.length > 0 ? [`rm -rf ${e.paths.join(' ')}`] : []), ...e.finds].join(' && ')
    const last = (lines[end] ?? '').replace(/\s+$/, '')
    // `&&`: a failing last command still fails the build; after a `;` the shell needs none.
    lines.splice(end, 1, last.endsWith(';') ? `${last} \\` : `${last} && \\`, `    ${added}`)
    applied.push({ layer: e.layer, line: end + 1, causes: e.causes, added })
  }
  return { dockerfile: lines.join('\n'), applied: applied.reverse(), manual }
}
