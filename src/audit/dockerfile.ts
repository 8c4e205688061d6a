import { DockerfileParser } from 'dockerfile-ast'
import type { Instruction } from 'dockerfile-ast'
import { expand } from './context.js'
import type { DockerfileContext, Lookup, ShellUnit } from './context.js'
import { createLineIndex } from './lines.js'
import type { LineIndex } from './lines.js'
import { execCommands, parseShell } from './shell.js'
import type { ShellParse, SimpleCommand, Word } from './shell.js'

const KEYWORDS = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'])

export interface LoadDockerfileInit {
  /** Repository-relative path. */
  path: string
  text: string
  /** A template: relative FROMs are includes, not images. */
  template?: boolean
  /** Global ARG defaults handed down by a template; the file's own defaults win. */
  inherited?: ReadonlyMap<string, string>
  /** Stage names defined before this file (a template's includes). */
  stages?: ReadonlySet<string>
  via?: string
  lookup: Lookup
}

export interface TemplateInclude {
  /** The FROM's image with ARGs expanded, e.g. `./server/`. */
  image: string
  stage: string | undefined
  line: number
}

export interface LoadedDockerfile {
  ctx: DockerfileContext
  units: ShellUnit[]
  includes: TemplateInclude[]
  /** Why the file is not a valid Dockerfile; when not empty the file is not audited. */
  problems: string[]
  /** RUN instructions whose shell could not be read in full (an unterminated quote); the rest is audited. */
  warnings: string[]
}

function offsetOf (lines: LineIndex, pos: { line: number, character: number }): number {
  return lines.lineStart(pos.line + 1) + pos.character
}

function dirOf (path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 ? '' : path.slice(0, i)
}

/** Names an ARG or ENV instruction declares. */
function declared (ins: Instruction): string[] {
  const k = ins.getKeyword()
  if (k === 'ARG') {
    const name = (ins as unknown as { getProperty: () => { getName: () => string } | null }).getProperty()?.getName()
    return name == null ? [] : [name]
  }
  if (k === 'ENV') return (ins as unknown as { getProperties: () => Array<{ getName: () => string }> }).getProperties().map(p => p.getName())
  return []
}

/** `SHELL` programs whose language is the POSIX shell the audit reads (`["/bin/bash", "-o", "pipefail", "-c"]`). */
const POSIX_SHELLS = /^(.*\/)?(sh|bash|dash|ash|ksh|mksh|zsh|busybox)$/

/** The program of a `SHELL ["prog", ...]` instruction. */
function shellOf (ins: Instruction): string | undefined {
  try {
    const argv = JSON.parse(ins.getArgumentsContent() ?? '') as unknown
    return Array.isArray(argv) && typeof argv[0] === 'string' ? argv[0] : undefined
  } catch {
    return undefined
  }
}

/** Leading RUN flags (`--mount=...`, `--network=none`), which BuildKit reads, not the shell; and where the shell text starts. */
function runFlags (text: string, start: number, end: number): { flags: Word[], from: number } {
  const flags: Word[] = []
  const flag = /(?:\s|\\\r?\n)*(--[^\s\\]+)/y
  let from = start
  for (;;) {
    flag.lastIndex = from
    const m = flag.exec(text)
    if (m?.[1] == null || m.index + m[0].length > end) break
    const at = m.index + m[0].length - m[1].length
    flags.push({ text: m[1], raw: m[1], start: at, end: at + m[1].length })
    from = at + m[1].length
  }
  return { flags, from }
}

/** Parses a RUN instruction's shell, following heredocs and the JSON (exec) form. */
async function runCommands (text: string, lines: LineIndex, ins: Instruction, posix: boolean): Promise<{ commands: SimpleCommand[], flags: Word[], problems: string[] }> {
  const start = offsetOf(lines, ins.getInstructionRange().end)
  const end = offsetOf(lines, ins.getRange().end)
  const { flags, from } = runFlags(text, start, end)
  const body = text.slice(from, end)
  const problems: string[] = []
  const trimmed = body.replace(/\\\r?\n/g, ' ').trim()
  let parsed: ShellParse | undefined
  if (trimmed.startsWith('[')) {
    try {
      const argv = JSON.parse(trimmed) as unknown
      if (Array.isArray(argv) && argv.every(a => typeof a === 'string')) {
        // Place each element at its JSON string literal (inside the quotes) so findings point at it.
        const literal = /"(?:[^"\\]|\\.)*"/g
        literal.lastIndex = from + body.indexOf('[')
        const words = argv.map(a => {
          const m = literal.exec(text)
          const at = m == null || m.index >= end ? from : m.index + 1
          return { text: a, raw: a, start: at, end: m == null || m.index >= end ? at : m.index + m[0].length - 1 }
        })
        parsed = await execCommands(text, words)
      }
    } catch {
      // not JSON: Docker runs it through the shell, so do the same
    }
  }
  const heredoc = /^\s*<<(-?)\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?/.exec(body)
  if (parsed != null) {
    // exec form: read above
  } else if (!posix) {
    // SHELL ["powershell", "-Command"]: not shell as this audit reads it
    return { commands: [], flags, problems }
  } else if (heredoc != null) {
    const bodyStart = text.indexOf('\n', from) + 1
    let bodyEnd = bodyStart
    for (let pos = bodyStart; pos < text.length;) {
      const nl = text.indexOf('\n', pos)
      const lineEnd = nl < 0 ? text.length : nl
      const line = text.slice(pos, lineEnd).replace(/\r$/, '')
      if ((heredoc[1] === '-' ? line.replace(/^\t+/, '') : line) === heredoc[2]) { bodyEnd = pos; break }
      pos = lineEnd + 1
      bodyEnd = pos
    }
    parsed = await parseShell(text, { start: bodyStart, end: bodyEnd, newlines: 'separator' })
  } else {
    parsed = await parseShell(text, { start: from, end, newlines: 'space' })
  }
  for (const p of parsed.problems) problems.push(`line ${lines.position(p.offset).line}: ${p.message}`)
  return { commands: parsed.commands.filter(c => c.words.length > 0 || c.redirects.length > 0 || c.assignments.length > 0), flags, problems }
}

export async function loadDockerfile (init: LoadDockerfileInit): Promise<LoadedDockerfile> {
  const { path, text, lookup } = init
  const lines = createLineIndex(text)
  const dockerfile = DockerfileParser.parse(text)
  const problems: string[] = []
  const instructions = dockerfile.getInstructions()
  let sawFrom = false
  for (const ins of instructions) {
    const k = ins.getKeyword()
    const line = ins.getRange().start.line + 1
    if (!KEYWORDS.has(k)) problems.push(`line ${line}: unknown instruction ${ins.getInstruction()}`)
    else if (k === 'FROM') {
      sawFrom = true
      if (ins.getArguments().length === 0) problems.push(`line ${line}: FROM has no image`)
    } else if (!sawFrom && k !== 'ARG') problems.push(`line ${line}: ${k} before the first FROM`)
  }
  if (!sawFrom && problems.length === 0) problems.push('no FROM instruction')

  const globals = new Map(init.inherited ?? [])
  for (const arg of dockerfile.getInitialARGs()) {
    const p = arg.getProperty()
    if (p == null) continue
    const v = p.getUnescapedValue()
    if (v != null) globals.set(p.getName(), expand(v, globals))
  }

  const dir = dirOf(path)
  const ctx: DockerfileContext = { path, source: text, lines, dockerfile, globals, stages: new Set(init.stages ?? []), dir, template: init.template === true, ...(init.via != null ? { via: init.via } : {}) }
  const units: ShellUnit[] = []
  const includes: TemplateInclude[] = []
  if (problems.length > 0) return { ctx, units, includes, problems, warnings: [] }
  const warnings: string[] = []

  let stageVars = new Set<string>()
  /** The stage's `SHELL` program, when one is set. */
  let shell: string | undefined
  for (const ins of instructions) {
    const k = ins.getKeyword()
    if (k === 'FROM') {
      stageVars = new Set()
      shell = undefined
      const from = dockerfile.getFROMs().find(f => f.getRange().start.line === ins.getRange().start.line)
      const image = expand(from?.getImage() ?? '', globals)
      if (ctx.template && /^\.{0,2}\//.test(image)) includes.push({ image, stage: from?.getBuildStage() ?? undefined, line: ins.getRange().start.line + 1 })
      continue
    }
    for (const name of declared(ins)) stageVars.add(name)
    if (k === 'SHELL') shell = shellOf(ins)
    if (k !== 'RUN') continue
    const run = await runCommands(text, lines, ins, shell == null || POSIX_SHELLS.test(shell))
    warnings.push(...run.problems)
    units.push({ path, context: 'dockerfile', source: text, lines, commands: run.commands, env: new Set(stageVars), runFlags: run.flags, dir, lookup, ...(init.via != null ? { via: init.via } : {}) })
  }
  return { ctx, units, includes, problems: [], warnings }
}
