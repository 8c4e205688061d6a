import type { LineIndex } from './lines.js'
import type { SimpleCommand, Word } from './shell.js'
import type { Dockerfile } from 'dockerfile-ast'
import type { Document } from 'yaml'
import type { Place, Report, RuleMeta } from './types.js'

/** Where a shell unit comes from: its commands are run as one (a RUN, a script, a workflow step). */
export type ShellContext = 'dockerfile' | 'script' | 'workflow'

/** Reads a repository-relative file for rules that look at a referenced file (e.g. a requirements file); undefined when absent. */
export type Lookup = (path: string) => string | undefined

/** One shell program: a Dockerfile RUN, a whole script, or one workflow `run:` step. "Later in the same unit" is how rules see a check that follows a download. */
export interface ShellUnit {
  path: string
  context: ShellContext
  /** The whole file's text; word offsets index into it. */
  source: string
  lines: LineIndex
  commands: SimpleCommand[]
  /** Variables known to be set for the unit: workflow `env:`, ARG/ENV declared earlier in the stage. */
  env: ReadonlySet<string>
  /** RUN flags such as `--mount=type=cache,target=/root/.cache`. */
  runFlags: Word[]
  /** Repository-relative directory that relative files resolve against. */
  dir: string
  lookup: Lookup
  via?: string
}

export interface DockerfileContext {
  path: string
  source: string
  lines: LineIndex
  dockerfile: Dockerfile
  /** Global ARG defaults, expanded, including those a template passes down. */
  globals: ReadonlyMap<string, string>
  /** Lower-case stage names a FROM may refer to (own stages and a template's includes). */
  stages: ReadonlySet<string>
  /** Repository-relative directory of the file. */
  dir: string
  /** Whether this file is a template whose relative FROMs are includes. */
  template: boolean
  via?: string
}

export interface WorkflowContext {
  path: string
  source: string
  lines: LineIndex
  document: Document.Parsed
  via?: string
}

/** A family of rules in one file: their descriptions and the checks that produce their findings. */
export interface RuleFamily {
  rules: RuleMeta[]
  dockerfile?: (ctx: DockerfileContext, report: Report) => void
  shell?: (unit: ShellUnit, report: Report) => void | Promise<void>
  workflow?: (ctx: WorkflowContext, report: Report) => void
}

/** A place in a unit's file for a report, from an offset. */
export function placeAt (unit: { path: string, lines: LineIndex, via?: string }, offset: number, text: string, message: string): Place {
  const { line, column } = unit.lines.position(offset)
  return { path: unit.path, line, column, text, message, ...(unit.via != null ? { via: unit.via } : {}) }
}

/** A command's words as written, for a finding's offending text (comment lines inside a RUN left out). */
export function commandText (cmd: SimpleCommand): string {
  return cmd.words.map(w => cmd.exec === true ? w.text : w.raw).join(' ')
}

/** Expands `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME-default}` with known values; unknown names stay as written. */
export function expand (value: string, vars: ReadonlyMap<string, string>): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced: string | undefined, op: string | undefined, alt: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? ''
    const v = vars.get(name)
    if (op == null) return v ?? whole
    const set = op.startsWith(':') ? v != null && v !== '' : v != null
    if (op.endsWith('-')) return set ? (v ?? '') : expand(alt ?? '', vars)
    return set ? expand(alt ?? '', vars) : ''
  })
}

export const HEX40 = /^[0-9a-f]{40}$/i
export const DIGEST_PINNED = /@sha256:[0-9a-f]{64}$/i
