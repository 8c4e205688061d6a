import { isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { Scalar } from 'yaml'
import type { Lookup, ShellUnit, WorkflowContext } from './context.js'
import { createLineIndex } from './lines.js'
import { envKeys } from './rules/workflows.js'
import { parseShell } from './shell.js'

export interface LoadedWorkflow {
  ctx: WorkflowContext | undefined
  /** Each `run:` step as its own shell unit, with the env keys in scope. */
  units: ShellUnit[]
  problems: string[]
}

const NOT_SH = /^(pwsh|powershell|python|cmd|node)\b/

/** The range of a `run:` scalar's shell text inside the YAML source. */
function scriptRange (text: string, node: Scalar): [number, number] | undefined {
  const range = node.range
  if (range == null) return undefined
  switch (node.type) {
    case 'BLOCK_LITERAL':
    case 'BLOCK_FOLDED':
      return [text.indexOf('\n', range[0]) + 1, range[1]]
    case 'QUOTE_DOUBLE':
    case 'QUOTE_SINGLE':
      return [range[0] + 1, range[1] - 1]
    default:
      return [range[0], range[1]]
  }
}

export function loadWorkflow (path: string, text: string, lookup: Lookup): LoadedWorkflow {
  const document = parseDocument(text)
  if (document.errors.length > 0) return { ctx: undefined, units: [], problems: document.errors.map(e => e.message.split('\n')[0] ?? e.message) }
  const lines = createLineIndex(text)
  const ctx: WorkflowContext = { path, source: text, lines, document }
  const units: ShellUnit[] = []
  const root = document.contents
  if (!isMap(root)) return { ctx, units, problems: ['a workflow must be a mapping with jobs'] }
  const globalEnv = envKeys(root)
  const jobs = root.get('jobs', true)
  if (!isMap(jobs)) return { ctx, units, problems: [] }
  for (const pair of jobs.items) {
    const job = pair.value
    if (!isMap(job)) continue
    const jobEnv = envKeys(job)
    const steps = job.get('steps', true)
    if (!isSeq(steps)) continue
    for (const step of steps.items) {
      if (!isMap(step)) continue
      const run = step.get('run', true)
      const shell = step.get('shell')
      if (!isScalar(run) || (typeof shell === 'string' && NOT_SH.test(shell))) continue
      const range = scriptRange(text, run)
      if (range == null) continue
      const folded = run.type === 'BLOCK_FOLDED'
      const parsed = parseShell(text, { start: range[0], end: range[1], newlines: folded ? 'space' : 'separator' })
      units.push({
        path,
        context: 'workflow',
        source: text,
        lines,
        commands: parsed.commands,
        env: new Set([...globalEnv, ...jobEnv, ...envKeys(step)]),
        runFlags: [],
        dir: '',
        lookup
      })
    }
  }
  return { ctx, units, problems: [] }
}
