/**
 * Shell code as the rules see it: RUN instructions, build scripts and workflow `run:` steps
 * parsed with tree-sitter's Bash grammar (a maintained parser, run as WebAssembly) and flattened
 * into the simple commands that run, each with its words, assignments and redirects, and every
 * word's offset into the file so findings point at the real line. Commands inside command and
 * process substitutions, pipelines, subshells, groups, loops, conditionals and functions are
 * listed too; wrappers (`sudo X`, `env X`, `busybox X`, `exec X`, ...) are resolved to the
 * command they run, and the script of `sh -c SCRIPT` is read like the rest of its unit.
 * Nothing is evaluated.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Language, Parser } from 'web-tree-sitter'
import type { Node } from 'web-tree-sitter'

export interface Word {
  /** The word with quotes and escapes removed (expansions left as written). */
  text: string
  /** The word as written. */
  raw: string
  /**
   * Offsets into the file text. For a command read from a script whose quoting moved it
   * away from the file's text (`sh -c "a \"b\""`), they span the whole quoted script.
   */
  start: number
  end: number
}

export interface Redirect {
  op: string
  target: Word
}

export type Separator = '&&' | '||' | ';' | '|' | '&' | 'newline' | 'group' | 'end'

export interface SimpleCommand {
  /** Command name first; leading assignments and wrappers (sudo, env, busybox, exec) removed. */
  words: Word[]
  /** `NAME=value` words before the command name. */
  assignments: Word[]
  redirects: Redirect[]
  /** What ends this command; `|` means its output feeds the next command. */
  next: Separator
  /** Set for a Dockerfile exec-form RUN (`RUN ["apt-get", "install", "x"]`), which no shell reads. */
  exec?: true
  /** For a command inside `$(...)`, backquotes or `<(...)`: the command whose word holds it. */
  substitutionOf?: SimpleCommand
}

export interface ShellParse {
  commands: SimpleCommand[]
  /** Problems such as an unterminated quote, with the offset where they start. */
  problems: Array<{ offset: number, message: string }>
}

export interface ShellParseInit {
  start?: number
  end?: number
  /**
   * `separator` for scripts; `space` for Dockerfile RUN, where the instruction is one
   * logical line: comment lines inside it are dropped and other newlines join lines.
   */
  newlines?: 'separator' | 'space'
}

/** Programs that run the command named by their operands; their own options are skipped. */
const WRAPPERS = new Set(['sudo', 'doas', 'nohup', 'exec', 'command', 'builtin', 'eatmydata', 'busybox', 'env', 'nice', 'time', 'timeout', 'stdbuf'])
/** Wrapper options that take the next word as their value. */
const WRAPPER_VALUE_FLAGS: Record<string, ReadonlySet<string>> = {
  sudo: new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '--user', '--group', '--chdir']),
  doas: new Set(['-u', '-C']),
  exec: new Set(['-a']),
  env: new Set(['-u', '-C', '-S', '--unset', '--chdir', '--split-string']),
  nice: new Set(['-n', '--adjustment']),
  timeout: new Set(['-s', '-k', '--signal', '--kill-after']),
  stdbuf: new Set(['-i', '-o', '-e'])
}
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/
const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh'])
/** `sh -c 'sh -c "..."'` is read this many levels deep. */
const MAX_INLINE_DEPTH = 3
/** Nodes that are one shell word (or part of the words of a `[ ... ]` test). */
const WORDLIKE = new Set(['word', 'string', 'raw_string', 'ansi_c_string', 'translated_string', 'concatenation', 'simple_expansion', 'expansion',
  'command_substitution', 'process_substitution', 'arithmetic_expansion', 'number', 'test_operator', 'regex', 'extglob_pattern', 'brace_expression', 'variable_name'])
const SEPARATORS = new Set<string>(['&&', '||', ';', '|', '&', ';;', '|&', ';&', ';;&'])
const REDIRECTS = new Set(['file_redirect', 'heredoc_redirect', 'herestring_redirect'])

let bash: Promise<Parser> | undefined
let checker: Promise<(text: string) => Promise<unknown>> | undefined
const require = createRequire(import.meta.url)

/** The Bash parser, loaded once (the grammar is a WebAssembly module); parsing itself is synchronous. */
export async function shellParser (): Promise<Parser> {
  bash ??= (async () => {
    await Parser.init()
    const wasm = require.resolve('tree-sitter-bash/tree-sitter-bash.wasm')
    const parser = new Parser()
    parser.setLanguage(await Language.load(wasm))
    return parser
  })()
  return await bash
}

/**
 * mvdan/sh (`sh-syntax`, the parser of shfmt, compiled to WebAssembly) as the judge of whether
 * shell is valid: tree-sitter's Bash grammar is fast and gives the tree, but misreads some valid
 * shell (`for i do`, backquotes holding parentheses, quotes in `case` patterns). Only text
 * tree-sitter finds errors in is judged; the module is compiled once.
 */
async function shellChecker (): Promise<(text: string) => Promise<unknown>> {
  checker ??= (async () => {
    const { getProcessor } = await import('sh-syntax')
    const module = await WebAssembly.compile(await readFile(require.resolve('sh-syntax/main.wasm')))
    const processor = getProcessor(async (imports: WebAssembly.Imports) => await WebAssembly.instantiate(module, imports))
    return async (text: string) => await processor(text, { keepComments: false })
  })()
  return await checker
}

/**
 * mvdan/sh's reading of `text`: where its top-level statements start, or the syntax error it
 * finds, in words a user knows. Offsets are into `text` (mvdan/sh counts UTF-8 bytes).
 */
async function statements (text: string): Promise<{ starts: number[], error?: { at: number, message: string } }> {
  const check = await shellChecker()
  const bytes = Buffer.from(text)
  const index = (offset: number): number => bytes.length === text.length ? offset : bytes.subarray(0, offset).toString().length
  try {
    const file = await check(text) as { Stmts?: Array<{ Pos: { Offset: number } }> }
    return { starts: (file.Stmts ?? []).map(st => index(st.Pos.Offset)) }
  } catch (err) {
    const e = err as { message?: string, Pos?: { Offset: number } }
    const at = e.Pos == null ? 0 : index(e.Pos.Offset)
    const message = (e.message ?? String(err))
      .replace(/^reached EOF without closing quote `"`$/, 'unterminated double quote')
      .replace(/^reached EOF without closing quote `'`$/, 'unterminated single quote')
      .replace(/^reached EOF without closing quote "`"$/, 'unterminated backquote')
      .replace(/^unclosed here-document `(.*)`$/, 'heredoc $1 is not closed')
    return { starts: [], error: { at, message } }
  }
}

/** Where the text being parsed sits in the file: exactly at `base`, or (after unquoting) somewhere in `[start, end)`. */
interface Placement {
  text: string
  exact: boolean
  base: number
  end: number
}

/**
 * Split shell text into the simple commands it runs. The script of `sh -c '...'` is read too:
 * its commands follow the `sh` command (whose `next` becomes `group`), with offsets into the
 * same source, so rules see them like any other.
 */
export async function parseShell (source: string, init: ShellParseInit = {}): Promise<ShellParse> {
  const parser = await shellParser()
  const start = init.start ?? 0
  const end = Math.min(init.end ?? source.length, source.length)
  let text = source.slice(start, end)
  if ((init.newlines ?? 'separator') === 'space') text = joinLines(text)
  const out: ShellParse = { commands: [], problems: [] }
  const reader = new Reader(parser, source, out)
  await reader.program({ text, exact: true, base: start, end }, 0)
  return out
}

/**
 * Commands of a Dockerfile exec-form RUN: the argv as given (no shell reads it), then, when
 * it runs a shell (`["/bin/busybox", "sh", "-c", "..."]`), the commands of its script.
 */
export async function execCommands (source: string, words: Word[]): Promise<ShellParse> {
  const parser = await shellParser()
  const out: ShellParse = { commands: [], problems: [] }
  const reader = new Reader(parser, source, out)
  const cmd = shape(words, [], [], 'end')
  cmd.exec = true
  await reader.emit(cmd, 0)
  return out
}

/**
 * A Dockerfile RUN is one logical line: its comment lines are dropped and the newlines that
 * remain join lines. Same length as the input, so offsets stay those of the file.
 */
function joinLines (text: string): string {
  if (/<<-?\s*["']?[A-Za-z_]/.test(text)) {
    // heredoc bodies need their newlines; only comment lines are dropped
    return text.replace(/(^|\n)([ \t]*#[^\n]*)/g, (_, nl: string, line: string) => nl + ' '.repeat(line.length))
  }
  return text
    .replace(/(^|\n)([ \t]*#[^\n]*\n?)/g, (_, nl: string, line: string) => nl + ' '.repeat(line.length))
    .replace(/(^|[^\\])\n/g, (_, before: string) => `${before} `)
}

function unescapeWord (s: string): string {
  return s.replace(/\\\r?\n/g, '').replace(/\\(.)/gs, '$1')
}

function unescapeDouble (s: string): string {
  return s.replace(/\\\r?\n/g, '').replace(/\\([$`"\\])/g, '$1')
}

/** The word's text as the shell sees it after quote removal; expansions and substitutions stay as written. */
function wordText (node: Node): string {
  switch (node.type) {
    case 'word':
      return unescapeWord(node.text)
    case 'raw_string':
      return node.text.slice(1, -1)
    case 'ansi_c_string':
      return node.text.slice(2, -1)
    case 'string':
    case 'translated_string': {
      // Text between the quotes: literal stretches are unescaped, expansions kept as written.
      const open = node.startIndex + (node.type === 'string' ? 1 : 2)
      const close = node.endIndex - (node.text.endsWith('"') ? 1 : 0)
      let text = ''
      let pos = open
      const whole = node.text
      for (const c of node.namedChildren) {
        if (c == null || c.type === 'string_content') continue
        text += unescapeDouble(whole.slice(pos - node.startIndex, c.startIndex - node.startIndex)) + c.text
        pos = c.endIndex
      }
      return text + unescapeDouble(whole.slice(pos - node.startIndex, Math.max(pos, close) - node.startIndex))
    }
    case 'concatenation':
      return node.children.map(c => c == null ? '' : wordText(c)).join('')
    default:
      return node.text
  }
}

/** Finds the script word of `sh -c SCRIPT` (`-ec`, `-o pipefail -c` and long options allowed). */
function inlineScript (cmd: SimpleCommand): Word | undefined {
  if (!SHELLS.has(commandName(cmd))) return undefined
  for (let k = 1; k < cmd.words.length; k++) {
    const flag = (cmd.words[k] as Word).text
    if (flag === '-o' || flag === '+o' || flag === '-O' || flag === '+O') { k++; continue }
    if (flag.startsWith('--') && flag.length > 2) continue
    if (!/^[-+][a-zA-Z]+$/.test(flag)) return undefined
    if (flag[0] !== '-' || !flag.includes('c')) continue
    return cmd.words[k + 1]
  }
  return undefined
}

/** Drops leading wrappers and their options, keeping `env`'s assignments; the command they run is what rules judge. */
function shape (all: Word[], assignments: Word[], redirects: Redirect[], next: Separator): SimpleCommand {
  let k = 0
  const assigned = [...assignments]
  for (;;) {
    const w = all[k]
    if (w == null) break
    const name = w.text.slice(w.text.lastIndexOf('/') + 1)
    if (!WRAPPERS.has(name) || all[k + 1] == null) break
    k++
    const values = WRAPPER_VALUE_FLAGS[name] ?? new Set()
    while (all[k] != null) {
      const t = (all[k] as Word).text
      if (name === 'env' && ASSIGNMENT.test(t)) { assigned.push(all[k] as Word); k++; continue }
      if (!t.startsWith('-') || t === '-') break
      k++
      if (t === '--') break
      if (values.has(t)) k++
    }
    // timeout DURATION COMMAND
    if (name === 'timeout' && all[k] != null && /^[0-9.]+[smhd]?$/.test((all[k] as Word).text)) k++
  }
  return { words: all.slice(k), assignments: assigned, redirects, next }
}

class Reader {
  private readonly parser: Parser
  private readonly source: string
  private readonly out: ShellParse

  constructor (parser: Parser, source: string, out: ShellParse) {
    this.parser = parser
    this.source = source
    this.out = out
  }

  /**
   * Parses `at.text` and lists its commands; `depth` counts `sh -c` levels. Where tree-sitter
   * finds an error, mvdan/sh judges the text: a real syntax error is reported (and what
   * tree-sitter recovered is still read); valid shell tree-sitter misread is read again one
   * statement at a time, as mvdan/sh splits it, and a statement still misread line by line.
   */
  async program (at: Placement, depth: number, recovering = false): Promise<void> {
    const tree = this.parser.parse(at.text)
    if (tree == null) {
      this.out.problems.push({ offset: at.base, message: 'the shell parser gave no result' })
      return
    }
    try {
      const root = tree.rootNode
      if (!root.hasError || recovering) {
        await this.walk(root, at, depth)
      } else {
        const judged = await statements(at.text)
        if (judged.error != null) this.out.problems.push({ offset: this.pos(at, judged.error.at), message: judged.error.message })
        if (judged.error != null || judged.starts.length === 0) {
          await this.walk(root, at, depth)
        } else {
          const bounds = [...judged.starts, at.text.length]
          for (let k = 0; k + 1 < bounds.length; k++) await this.piece(at, bounds[k] as number, bounds[k + 1] as number, depth)
        }
      }
      const last = this.out.commands.at(-1)
      if (last != null && last.next === 'newline') last.next = 'end'
    } finally {
      tree.delete()
    }
  }

  /** One top-level statement of valid shell that tree-sitter misread as a whole. */
  private async piece (at: Placement, start: number, end: number, depth: number): Promise<void> {
    const part = (from: number, to: number): Placement => ({ ...at, text: at.text.slice(from, to), ...(at.exact ? { base: at.base + from } : {}) })
    const tree = this.parser.parse(at.text.slice(start, end))
    const clean = tree != null && !tree.rootNode.hasError
    tree?.delete()
    if (clean) { await this.program(part(start, end), depth, true); return }
    for (const line of logicalLines(at.text, start, end)) await this.program(part(line.start, line.end), depth, true)
  }

  private pos (at: Placement, i: number): number {
    return at.exact ? at.base + i : at.base
  }

  private word (node: Node, at: Placement, text = wordText(node)): Word {
    return at.exact
      ? { text, raw: node.text, start: at.base + node.startIndex, end: at.base + node.endIndex }
      : { text, raw: node.text, start: at.base, end: at.end }
  }

  /** Adds a command, then the commands of its `sh -c` script. */
  async emit (cmd: SimpleCommand, depth: number): Promise<void> {
    this.out.commands.push(cmd)
    const script = depth < MAX_INLINE_DEPTH ? inlineScript(cmd) : undefined
    // A script made by a substitution (`sh -c "$(curl ...)"`) is not known here; its commands are read as a substitution.
    if (script == null || /\$\(|`|<\(/.test(script.raw)) return
    const written = this.source.slice(script.start, script.end)
    const offset = written.indexOf(script.text)
    const exact = offset >= 0 && written.indexOf(script.text, offset + 1) < 0 && script.start + offset + script.text.length <= script.end
    const next = cmd.next
    cmd.next = 'group'
    const before = this.out.commands.length
    await this.program({ text: script.text, exact, base: exact ? script.start + offset : script.start, end: script.end }, depth + 1)
    const last = this.out.commands.at(-1)
    if (this.out.commands.length > before && last != null) last.next = next
    else cmd.next = next
  }

  /** Lists the commands of substitutions inside `node` (a word, a redirect target); the caller marks whose they are. */
  private async substitutions (node: Node, at: Placement, depth: number): Promise<void> {
    // A quoted heredoc delimiter (<<'EOF') keeps the body's text as written; no substitution runs.
    if (node.type === 'heredoc_body' && /^["'\\]/.test(node.parent?.children.find(c => c?.type === 'heredoc_start')?.text ?? '')) return
    // The commands after a heredoc (`cat <<EOF | sh`) are read by heredocTail.
    if (node.type === 'pipeline' || node.type === 'list' || node.type === 'command') return
    if (node.type === 'command_substitution' || node.type === 'process_substitution') {
      const before = this.out.commands.length
      for (const c of node.children) {
        if (c == null) continue
        if (c.isNamed) await this.walk(c, at, depth)
        else this.separator(c.type)
      }
      const last = this.out.commands.slice(before).at(-1)
      if (last != null) last.next = 'group'
      return
    }
    for (const c of node.namedChildren) if (c != null) await this.substitutions(c, at, depth)
  }

  /** A simple command (or declaration, test, assignment) from its node. */
  private async command (node: Node, at: Placement, depth: number): Promise<void> {
    const words: Word[] = []
    const assignments: Word[] = []
    const redirects: Redirect[] = []
    const pending: Array<{ node: Node, at: Placement }> = []
    const add = (n: Node): void => {
      if (n.type === 'comment') return
      if (REDIRECTS.has(n.type)) {
        const r = this.redirect(n, at)
        if (r != null) redirects.push(r)
        pending.push({ node: n, at })
        return
      }
      if (n.type === 'variable_assignment' && words.length === 0 && (node.type === 'command' || node.type === 'variable_assignment' || node.type === 'variable_assignments')) assignments.push(this.word(n, at, assignmentText(n)))
      else if (n.type === 'variable_assignment') words.push(this.word(n, at, assignmentText(n)))
      else if (n.type === 'command_name') words.push(this.word(n, at, n.firstNamedChild != null ? wordText(n.firstNamedChild) : n.text))
      else if (WORDLIKE.has(n.type) || !n.isNamed) words.push(this.word(n, at))
      else { for (const c of n.children) if (c != null) add(c); return }
      pending.push({ node: n, at })
    }
    if (node.type === 'variable_assignment') add(node)
    else for (const c of node.children) if (c != null) add(c)
    // Commands in substitutions run first.
    const before = this.out.commands.length
    for (const p of pending) await this.substitutions(p.node, p.at, depth)
    const held = shape(words, assignments, redirects, 'newline')
    for (const c of this.out.commands.slice(before)) c.substitutionOf ??= held
    await this.emit(held, depth)
  }

  private redirect (node: Node, at: Placement): Redirect | undefined {
    const op = node.children.find(c => c != null && !c.isNamed)?.type ?? ''
    if (node.type === 'heredoc_redirect') {
      const start = node.children.find(c => c?.type === 'heredoc_start')
      return start == null ? undefined : { op, target: this.word(start, at, start.text.replace(/^["']|["']$/g, '')) }
    }
    const target = node.childForFieldName('destination') ?? node.namedChildren.filter(c => c != null && c.type !== 'file_descriptor').at(-1)
    return target == null ? undefined : { op, target: this.word(target, at) }
  }

  /** Walks statements in order, setting each command's `next` from the separator that follows it. */
  private async walk (node: Node, at: Placement, depth: number): Promise<void> {
    switch (node.type) {
      case 'command':
      case 'declaration_command':
      case 'unset_command':
      case 'test_command':
      case 'variable_assignment':
      case 'variable_assignments':
        await this.command(node, at, depth)
        return
      case 'redirected_statement': {
        const body = node.childForFieldName('body') ?? node.namedChildren.find(c => c != null && !REDIRECTS.has(c.type))
        const redirs = node.children.filter((r): r is Node => r != null && REDIRECTS.has(r.type))
        // Substitutions in redirect targets (`> $(mktemp)`) run before the command.
        const first = this.out.commands.length
        for (const r of redirs) await this.substitutions(r, at, depth)
        const before = this.out.commands.length
        if (body != null) await this.walk(body, at, depth)
        const inBody = this.out.commands.slice(before).filter(c => c.substitutionOf == null)
        for (const c of this.out.commands.slice(first, before)) c.substitutionOf ??= inBody[0]
        for (const r of redirs) {
          const redirect = this.redirect(r, at)
          if (redirect == null) continue
          // `{ a; b; } > f`: every command of the group writes there.
          const targets = body?.type === 'command' ? inBody.slice(0, 1) : inBody
          for (const c of targets) if (!c.redirects.some(x => x.target.start === redirect.target.start && x.op === redirect.op)) c.redirects.push(redirect)
        }
        // A heredoc's command line may go on: `cat <<EOF | sh`, `cat <<EOF && x`.
        for (const r of redirs) await this.heredocTail(r, at, depth)
        return
      }
      case 'pipeline': {
        for (const c of node.children) {
          if (c == null) continue
          if (!c.isNamed) { this.separator(c.type); continue }
          await this.walk(c, at, depth)
        }
        return
      }
      case 'comment':
      case 'heredoc_body':
        return
      default:
        if (WORDLIKE.has(node.type)) {
          // `for x in $(ls)`, `case $(uname) in`: only substitutions run
          await this.substitutions(node, at, depth)
          return
        }
        for (const c of node.children) {
          if (c == null) continue
          if (!c.isNamed) { this.separator(c.type); continue }
          if (REDIRECTS.has(c.type)) { await this.substitutions(c, at, depth); continue }
          await this.walk(c, at, depth)
        }
    }
  }

  private async heredocTail (node: Node, at: Placement, depth: number): Promise<void> {
    if (node.type !== 'heredoc_redirect') return
    for (const c of node.children) {
      if (c == null || c.type === 'heredoc_body' || c.type === 'heredoc_start' || c.type === 'heredoc_end') continue
      if (!c.isNamed) { this.separator(c.type); continue }
      if (REDIRECTS.has(c.type)) continue
      await this.walk(c, at, depth)
    }
  }

  private separator (token: string): void {
    if (!SEPARATORS.has(token)) return
    const last = this.out.commands.at(-1)
    if (last == null) return
    last.next = token === '|&' ? '|' : token.startsWith(';') ? ';' : token as Separator
  }
}

function assignmentText (node: Node): string {
  const name = node.childForFieldName('name') ?? node.firstNamedChild
  const value = node.childForFieldName('value')
  const op = node.children.find(c => c != null && !c.isNamed)?.type ?? '='
  return `${name?.text ?? ''}${op}${value != null ? wordText(value) : ''}`
}

/** The lines of `text[start, end)`, a line continued by a trailing backslash joined with the next. */
function logicalLines (text: string, start: number, end: number): Array<{ start: number, end: number }> {
  const out: Array<{ start: number, end: number }> = []
  let from = start
  for (let i = start; i <= end; i++) {
    if (i < end && (text[i] !== '\n' || text[i - 1] === '\\')) continue
    if (text.slice(from, i).trim() !== '') out.push({ start: from, end: i })
    from = i + 1
  }
  return out
}

/** The command name without its directory (`/usr/bin/apt-get` → `apt-get`). */
export function commandName (cmd: SimpleCommand): string {
  const first = cmd.words[0]?.text ?? ''
  return first.slice(first.lastIndexOf('/') + 1)
}

/** Words after the command name that are not options. Options listed in `withValue` consume the next word. */
export function operands (cmd: SimpleCommand, from: number, withValue: ReadonlySet<string> = new Set()): Word[] {
  const out: Word[] = []
  for (let k = from; k < cmd.words.length; k++) {
    const w = cmd.words[k] as Word
    if (w.text === '--') { out.push(...cmd.words.slice(k + 1)); break }
    if (w.text.startsWith('-') && w.text.length > 1) {
      if (withValue.has(w.text)) k++
      continue
    }
    out.push(w)
  }
  return out
}
