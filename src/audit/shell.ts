/**
 * A small shell tokenizer: enough of POSIX sh to split RUN instructions, build scripts
 * and workflow `run:` steps into simple commands with words, assignments and redirects,
 * keeping every word's offset into the file so findings point at the real line.
 * It does not evaluate anything; command substitutions stay inside their word's raw text.
 */

export interface Word {
  /** The word with quotes and escapes removed (expansions left as written). */
  text: string
  /** The word as written. */
  raw: string
  /** Offsets into the file text. */
  start: number
  end: number
}

export interface Redirect {
  op: string
  target: Word
}

export type Separator = '&&' | '||' | ';' | '|' | '&' | 'newline' | 'group' | 'end'

export interface SimpleCommand {
  /** Command name first; leading reserved words, assignments and wrappers (sudo, env) removed. */
  words: Word[]
  /** `NAME=value` words before the command name. */
  assignments: Word[]
  redirects: Redirect[]
  /** What ends this command; `|` means its output feeds the next command. */
  next: Separator
  /** Set for a Dockerfile exec-form RUN (`RUN ["apt-get", "install", "x"]`), which no shell reads. */
  exec?: true
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
   * logical line and newlines only remain after continuation and comment lines.
   */
  newlines?: 'separator' | 'space'
}

const RESERVED = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', '!', '{', '}', 'time', 'case', 'esac'])
const WRAPPERS = new Set(['sudo', 'nohup', 'exec', 'command', 'builtin', 'eatmydata'])
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=/
const WORD_END = new Set([' ', '\t', '\n', '\r', ';', '&', '|', '<', '>', '(', ')'])

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh'])
/** `sh -c 'sh -c "..."'` is read this many levels deep. */
const MAX_INLINE_DEPTH = 3

/**
 * The script word of `sh -c SCRIPT` (`-ec`, `-o pipefail -c` and long options allowed), when
 * its text is the source between its quotes: one single-quoted string, or one double-quoted
 * string without escapes. Other forms would need the shell's unquoting, which would move
 * offsets away from the file; they are not read.
 */
function inlineScript (cmd: SimpleCommand): Word | undefined {
  if (!SHELLS.has(commandName(cmd))) return undefined
  for (let k = 1; k < cmd.words.length; k++) {
    const flag = (cmd.words[k] as Word).text
    if (flag === '-o' || flag === '+o' || flag === '-O' || flag === '+O') { k++; continue }
    if (flag.startsWith('--') && flag.length > 2) continue
    if (!/^[-+][a-zA-Z]+$/.test(flag)) return undefined
    if (flag[0] !== '-' || !flag.includes('c')) continue
    const script = cmd.words[k + 1]
    if (script == null) return undefined
    const q = script.raw[0]
    const inner = script.raw.slice(1, -1)
    const whole = script.raw.length >= 2 && script.raw.at(-1) === q
    if (whole && q === "'" && !inner.includes("'")) return script
    if (whole && q === '"' && !/["\\]/.test(inner)) return script
    return undefined
  }
  return undefined
}

/**
 * Split shell text into simple commands. The script of `sh -c '...'` is read too: its
 * commands follow the `sh` command (whose `next` becomes `group`), with offsets into the
 * same source, so rules see them like any other.
 */
export function parseShell (source: string, init: ShellParseInit = {}, depth = 0): ShellParse {
  const parsed = tokenize(source, init)
  if (depth >= MAX_INLINE_DEPTH || !parsed.commands.some(c => inlineScript(c) !== undefined)) return parsed
  const commands: SimpleCommand[] = []
  for (const cmd of parsed.commands) {
    commands.push(cmd)
    const script = inlineScript(cmd)
    if (script === undefined) continue
    const nested = parseShell(source, { ...init, start: script.start + 1, end: script.end - 1 }, depth + 1)
    parsed.problems.push(...nested.problems)
    const last = nested.commands.at(-1)
    if (last === undefined) continue
    last.next = cmd.next
    cmd.next = 'group'
    commands.push(...nested.commands)
  }
  return { commands, problems: parsed.problems }
}

function tokenize (source: string, init: ShellParseInit): ShellParse {
  const end = Math.min(init.end ?? source.length, source.length)
  const newlineSeparates = (init.newlines ?? 'separator') === 'separator'
  const commands: SimpleCommand[] = []
  const problems: ShellParse['problems'] = []
  let words: Word[] = []
  let redirects: Redirect[] = []
  const heredocs: Array<{ delimiter: string, stripTabs: boolean }> = []
  let i = init.start ?? 0

  const finish = (next: Separator): void => {
    if (words.length > 0 || redirects.length > 0) commands.push(shape(words, redirects, next))
    words = []
    redirects = []
  }

  /** Reads one word starting at `pos`; returns its end. */
  const readWord = (pos: number): Word => {
    const start = pos
    let text = ''
    while (pos < end) {
      const c = source[pos] as string
      if (c === '\\') {
        const n = source[pos + 1]
        if (n === '\n') { pos += 2; continue }
        if (n === '\r' && source[pos + 2] === '\n') { pos += 3; continue }
        if (n != null) text += n
        pos += 2
        continue
      }
      if (WORD_END.has(c)) break
      if (c === "'") {
        const close = source.indexOf("'", pos + 1)
        if (close < 0 || close >= end) { problems.push({ offset: pos, message: 'unterminated single quote' }); text += source.slice(pos + 1, end); pos = end; break }
        text += source.slice(pos + 1, close)
        pos = close + 1
        continue
      }
      if (c === '"') {
        const close = skipDouble(pos + 1)
        text += unescapeDouble(source.slice(pos + 1, Math.min(close, end)))
        pos = close + 1
        continue
      }
      if (c === '`') {
        const close = skipBacktick(pos + 1)
        text += source.slice(pos, Math.min(close + 1, end))
        pos = close + 1
        continue
      }
      if (c === '$' && (source[pos + 1] === '(' || source[pos + 1] === '{')) {
        const close = skipBalanced(pos + 1)
        text += source.slice(pos, Math.min(close + 1, end))
        pos = close + 1
        continue
      }
      text += c
      pos++
    }
    pos = Math.min(pos, end)
    return { text, raw: source.slice(start, pos), start, end: pos }
  }

  /** From just after an opening `"`, the offset of its closing `"`. */
  const skipDouble = (pos: number): number => {
    const opened = pos - 1
    while (pos < end) {
      const c = source[pos]
      if (c === '\\') { pos += 2; continue }
      if (c === '"') return pos
      if (c === '`') { pos = skipBacktick(pos + 1) + 1; continue }
      if (c === '$' && (source[pos + 1] === '(' || source[pos + 1] === '{')) { pos = skipBalanced(pos + 1) + 1; continue }
      pos++
    }
    problems.push({ offset: opened, message: 'unterminated double quote' })
    return end
  }

  const skipBacktick = (pos: number): number => {
    const opened = pos - 1
    while (pos < end) {
      const c = source[pos]
      if (c === '\\') { pos += 2; continue }
      if (c === '`') return pos
      pos++
    }
    problems.push({ offset: opened, message: 'unterminated backquote' })
    return end
  }

  /** From an opening `(` or `{`, the offset of the bracket that closes it; quotes inside are skipped. */
  const skipBalanced = (pos: number): number => {
    const open = source[pos] as string
    const close = open === '(' ? ')' : '}'
    const opened = pos - 1
    let depth = 0
    while (pos < end) {
      const c = source[pos]
      if (c === '\\') { pos += 2; continue }
      if (c === "'" && open === '(') {
        const q = source.indexOf("'", pos + 1)
        pos = q < 0 ? end : q + 1
        continue
      }
      if (c === '"') { pos = skipDouble(pos + 1) + 1; continue }
      if (c === '`') { pos = skipBacktick(pos + 1) + 1; continue }
      if (c === open) depth++
      else if (c === close) {
        depth--
        if (depth === 0) return pos
      }
      pos++
    }
    problems.push({ offset: opened, message: `unterminated ${open === '(' ? '$(' : '${'}` })
    return end
  }

  /** `<(...)` or `>(...)` at `pos`, as one word. */
  const readProcessSubstitution = (pos: number): Word => {
    const stop = Math.min(skipBalanced(pos + 1) + 1, end)
    return { text: source.slice(pos, stop), raw: source.slice(pos, stop), start: pos, end: stop }
  }

  /** Skips heredoc bodies that start after the newline at `pos`; returns the offset after them. */
  const skipHeredocs = (pos: number): number => {
    while (heredocs.length > 0) {
      const doc = heredocs.shift() as { delimiter: string, stripTabs: boolean }
      for (;;) {
        if (pos >= end) { problems.push({ offset: pos, message: `heredoc ${doc.delimiter} is not closed` }); return end }
        let lineEnd = source.indexOf('\n', pos)
        if (lineEnd < 0 || lineEnd > end) lineEnd = end
        let line = source.slice(pos, lineEnd).replace(/\r$/, '')
        if (doc.stripTabs) line = line.replace(/^\t+/, '')
        pos = lineEnd + 1
        if (line === doc.delimiter) break
      }
    }
    return pos
  }

  while (i < end) {
    const c = source[i] as string
    const n = source[i + 1]
    if (c === '\\' && n === '\n') { i += 2; continue }
    if (c === '\\' && n === '\r' && source[i + 2] === '\n') { i += 3; continue }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue }
    if (c === '\n') {
      if (newlineSeparates) finish('newline')
      i++
      if (heredocs.length > 0) i = skipHeredocs(i)
      continue
    }
    if (c === '#') {
      const nl = source.indexOf('\n', i)
      i = nl < 0 || nl > end ? end : nl
      continue
    }
    if (c === '&' && n === '&') { finish('&&'); i += 2; continue }
    if (c === '|' && n === '|') { finish('||'); i += 2; continue }
    if (c === ';') { finish(';'); i += n === ';' ? 2 : 1; continue }
    if (c === '|') { finish('|'); i += n === '&' ? 2 : 1; continue }
    if (c === '(' || c === ')') { finish('group'); i++; continue }
    // Process substitution <(...) and >(...) is one word, not a redirect.
    if ((c === '<' || c === '>') && n === '(') {
      const word = readProcessSubstitution(i)
      words.push(word)
      i = word.end
      continue
    }
    // Redirects: [n]> [n]>> [n]< <<[-] <<< &> >& n>&m
    const redirect = /^(\d*)(&>>|&>|>>|>&|>\||<<<|<<-|<<|<>|<&|>|<)/.exec(source.slice(i, Math.min(end, i + 6)))
    if (redirect != null) {
      const op = redirect[2] as string
      i += redirect[0].length
      while (i < end && (source[i] === ' ' || source[i] === '\t')) i++
      const substitution = (source[i] === '<' || source[i] === '>') && source[i + 1] === '('
      if (!substitution && (i >= end || WORD_END.has(source[i] as string))) { problems.push({ offset: i, message: `redirect ${op} has no target` }); continue }
      const target = substitution ? readProcessSubstitution(i) : readWord(i)
      i = target.end
      if (op === '<<' || op === '<<-') heredocs.push({ delimiter: target.text, stripTabs: op === '<<-' })
      redirects.push({ op, target })
      continue
    }
    if (c === '&') { finish('&'); i++; continue }
    const word = readWord(i)
    if (word.end === i) { i++; continue }
    words.push(word)
    i = word.end
  }
  finish('end')
  return { commands, problems }
}

function unescapeDouble (s: string): string {
  return s.replace(/\\\r?\n/g, '').replace(/\\([$`"\\])/g, '$1')
}

function shape (all: Word[], redirects: Redirect[], next: Separator): SimpleCommand {
  let k = 0
  const assignments: Word[] = []
  for (;;) {
    const w = all[k]
    if (w == null) break
    if (RESERVED.has(w.raw)) { k++; continue }
    if (ASSIGNMENT.test(w.raw)) { assignments.push(w); k++; continue }
    if (WRAPPERS.has(w.text)) {
      k++
      // sudo's own flags (-u user, -E) come before the command
      while (all[k]?.text.startsWith('-') === true) {
        const flag = all[k]?.text
        k += flag === '-u' || flag === '-g' ? 2 : 1
      }
      continue
    }
    if (w.text === 'env') {
      k++
      while (all[k] != null && (all[k]?.text.startsWith('-') === true || ASSIGNMENT.test(all[k]?.raw ?? ''))) {
        const x = all[k] as Word
        if (ASSIGNMENT.test(x.raw)) assignments.push(x)
        k++
      }
      continue
    }
    break
  }
  return { words: all.slice(k), assignments, redirects, next }
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
