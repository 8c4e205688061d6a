import { isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { Scalar, YAMLMap } from 'yaml'
import type { Lookup, ShellUnit, WorkflowContext } from './context.js'
import { createLineIndex } from './lines.js'
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

/** Keys of a mapping's `env:`. */
export function envKeys (node: unknown): string[] {
  if (!isMap(node)) return []
  const env = node.get('env', true)
  if (!isMap(env)) return []
  return env.items.map(p => isScalar(p.key) ? String(p.key.value) : '').filter(k => k !== '')
}

/** A list of steps with the env keys in scope: a job's, or a composite action's. */
export interface StepList {
  /** The job (undefined for a composite action). */
  job: YAMLMap | undefined
  steps: YAMLMap[]
  env: Set<string>
}

/**
 * Every list of steps in a workflow (`jobs.<id>.steps`, with workflow and job `env:`) or in a
 * composite action (`runs.steps` of an `action.yml`; its inputs are not environment).
 */
export function stepLists (root: unknown): StepList[] {
  if (!isMap(root)) return []
  const maps = (seq: unknown): YAMLMap[] => isSeq(seq) ? seq.items.filter(isMap) : []
  const runs = root.get('runs', true)
  if (isMap(runs)) return [{ job: undefined, steps: maps(runs.get('steps', true)), env: new Set() }]
  const jobs = root.get('jobs', true)
  if (!isMap(jobs)) return []
  const globalEnv = envKeys(root)
  return jobs.items.filter(p => isMap(p.value)).map(p => {
    const job = p.value as YAMLMap
    return { job, steps: maps(job.get('steps', true)), env: new Set([...globalEnv, ...envKeys(job)]) }
  })
}

export async function loadWorkflow (path: string, text: string, lookup: Lookup): Promise<LoadedWorkflow> {
  const document = parseDocument(text)
  if (document.errors.length > 0) return { ctx: undefined, units: [], problems: document.errors.map(e => e.message.split('\n')[0] ?? e.message) }
  const lines = createLineIndex(text)
  const ctx: WorkflowContext = { path, source: text, lines, document }
  const units: ShellUnit[] = []
  const root = document.contents
  if (!isMap(root)) return { ctx, units, problems: ['a workflow must be a mapping with jobs, an action one with runs'] }
  for (const { steps, env } of stepLists(root)) {
    for (const step of steps) {
      const run = step.get('run', true)
      const shell = step.get('shell')
      if (!isScalar(run) || (typeof shell === 'string' && NOT_SH.test(shell))) continue
      const range = scriptRange(text, run)
      if (range == null) continue
      const folded = run.type === 'BLOCK_FOLDED'
      const parsed = await parseShell(text, { start: range[0], end: range[1], newlines: folded ? 'space' : 'separator' })
      units.push({
        path,
        context: 'workflow',
        source: text,
        lines,
        commands: parsed.commands,
        env: new Set([...env, ...envKeys(step)]),
        runFlags: [],
        dir: '',
        lookup
      })
    }
  }
  return { ctx, units, problems: [] }
}
