import { DockerfileParser } from 'dockerfile-ast'
import { CAUSES, type CauseId } from '../../protocol/causes.js'
import type { ImageDiff } from './diff.js'

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
  const edits = new Map<number, { layer: number, causes: CauseId[], paths: string[] }>()
  for (const layer of diff.layers) {
    const ids = Object.keys(layer.causeCounts) as CauseId[]
    // Directories named by a cause, where this layer's differing paths lie: /opt/venv/.../__pycache__.
    const dirs = (id: CauseId): string[] => {
      const name = CAUSES[id]?.removeDirsNamed
      if (name == null || layer.omitted > 0) return []
      const found = layer.changes.filter(c => c.cause?.id === id).map(c => { const i = `/${c.path}/`.indexOf(`/${name}/`); return i === -1 ? undefined : `/${c.path.slice(0, i + name.length)}` })
      return found.every(d => d != null) ? [...new Set(found as string[])].sort() : []
    }
    const removable = ids.filter(id => CAUSES[id]?.remove != null || dirs(id).length > 0)
    for (const id of ids) if (!removable.includes(id)) manual.push({ layer: layer.index, cause: id })
    if (removable.length === 0) continue
    const cmd = layer.step != null ? stepCommand(layer.step) : undefined
    // Long steps are shortened in history: compare on what both have.
    const run = cmd == null || cmd === '' ? undefined : runs.find(r => r.command.startsWith(cmd.slice(0, 200)) || cmd.startsWith(r.command.slice(0, 200)))
    if (run == null) { for (const id of removable) manual.push({ layer: layer.index, cause: id }); continue }
    const e = edits.get(run.end) ?? { layer: layer.index, causes: [], paths: [] }
    for (const id of removable) {
      e.causes.push(id)
      for (const p of [...CAUSES[id].remove ?? [], ...dirs(id)]) if (!e.paths.includes(p)) e.paths.push(p)
    }
    edits.set(run.end, e)
  }
  for (const [end, e] of [...edits].sort((x, y) => y[0] - x[0])) {
    const added = `rm -rf ${e.paths.join(' ')}`
    const last = (lines[end] ?? '').replace(/\s+$/, '')
    // `&&`: a failing last command still fails the build; after a `;` the shell needs none.
    lines.splice(end, 1, last.endsWith(';') ? `${last} \\` : `${last} && \\`, `    ${added}`)
    applied.push({ layer: e.layer, line: end + 1, causes: e.causes, added })
  }
  return { dockerfile: lines.join('\n'), applied: applied.reverse(), manual }
}
