import { placeAt } from '../context.js'
import type { RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const BUILD_TIME_EMBEDDED = 'NR002-build-time-embedded'
export const NONDETERMINISTIC_VALUE = 'NR003-nondeterministic-value'
export const RANDOM_EMBEDDED = 'NR004-random-embedded'

/** `$(date ...)` or a backquoted date, also as `/bin/date` or `busybox date`. */
const DATE_SUBST = /\$\(\s*(?:\S*\/)?(?:busybox\s+)?date\b[^)]*\)|`\s*(?:\S*\/)?(?:busybox\s+)?date\b[^`]*`/
const HOST_OR_TEMP = /\$\(\s*(hostname|mktemp)\b[^)]*\)|`\s*(hostname|mktemp)\b[^`]*`|\$\{?HOSTNAME\b/
/** A random value written as shell text: `$RANDOM`, the kernel's uuid file. */
const RANDOM = /\$\{?RANDOM\b|\/proc\/sys\/kernel\/random\/uuid/
const RANDOM_DEVICE = /^\/dev\/u?random$/
/** Programs that copy what they read; reading a random device they print random bytes. */
const READERS = new Set(['head', 'tail', 'cat', 'dd', 'od', 'xxd', 'hexdump', 'base64', 'base32', 'tr', 'cut', 'fold', 'shuf', 'sha256sum', 'md5sum'])
/** Words that carry a value into the binary or image: linker flags, compiler defines, build args and labels. */
const INTO_ARTIFACT = /-ldflags|(^|\s)-X(\s|$)|^-X|^-D[A-Za-z_]|--build-arg|--label/

function writesFile (cmd: SimpleCommand): boolean {
  if (cmd.redirects.some(r => /^(>|>>|&>|&>>|>\|)$/.test(r.op) && !r.target.text.startsWith('/dev/'))) return true
  const name = commandName(cmd)
  if (name === 'tee') return cmd.words.slice(1).some(w => !w.text.startsWith('-'))
  if (name === 'sed') return cmd.words.some(w => /^-[a-zA-Z]*i/.test(w.text) || w.text.startsWith('--in-place'))
  return false
}

/** Whether this word's value ends up in an artifact: part of linker flags, a build arg, or a file the command writes. */
function intoArtifact (cmd: SimpleCommand, k: number): boolean {
  if (writesFile(cmd)) return true
  const w = cmd.words[k] as Word
  if (INTO_ARTIFACT.test(w.raw)) return true
  const prev = cmd.words[k - 1]
  return prev != null && INTO_ARTIFACT.test(prev.text)
}

function offsetOf (w: Word, pattern: RegExp): number {
  const m = pattern.exec(w.raw)
  return w.start + (m?.index ?? 0)
}

/** What makes a command's output random: `openssl rand`, `uuidgen`, a reader of /dev/urandom (operand, `if=` or `<`); undefined when nothing does. */
function randomSource (cmd: SimpleCommand): string | undefined {
  const name = commandName(cmd)
  if (name === 'openssl' && cmd.words[1]?.text === 'rand') return 'openssl rand'
  if (name === 'uuidgen' || name === 'mcookie') return name
  if (!READERS.has(name)) return undefined
  const device = cmd.words.slice(1).find(w => RANDOM_DEVICE.test(w.text.replace(/^if=/, ''))) ?? cmd.redirects.find(r => r.op === '<' && RANDOM_DEVICE.test(r.target.text))?.target
  return device == null ? undefined : `${name} ${device.text.replace(/^if=/, '')}`
}

/** Where a command writes its output besides stdout: `dd of=`, `openssl rand -out`. */
function writesOwnFile (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  if (name === 'dd') return cmd.words.some(w => /^of=(?!\/dev\/)/.test(w.text))
  if (name === 'openssl') return cmd.words.some(w => w.text === '-out')
  return false
}

/**
 * Whether the output of the command at `index` ends up in a file or an artifact: written by it
 * or by a later command of its pipe, or, inside a substitution, by the command that holds it.
 * Returns the variables its value is assigned to when it only reaches one.
 */
function randomReaches (unit: ShellUnit, index: number): { embedded: boolean, vars: string[] } {
  const cmd = unit.commands[index] as SimpleCommand
  if (writesFile(cmd) || writesOwnFile(cmd)) return { embedded: true, vars: [] }
  for (let k = index; unit.commands[k]?.next === '|'; k++) {
    const c = unit.commands[k + 1]
    if (c != null && writesFile(c)) return { embedded: true, vars: [] }
  }
  const holder = cmd.substitutionOf
  const at = cmd.words[0]?.start ?? -1
  if (holder == null) return { embedded: false, vars: [] }
  const k = holder.words.findIndex(w => w.start <= at && at < w.end)
  if (k >= 0) return { embedded: intoArtifact(holder, k), vars: [] }
  const vars = [...holder.assignments, ...(holder.words.slice(1))]
    .filter(a => a.start <= at && at < a.end)
    .map(a => /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(a.raw)?.[1])
    .filter((v): v is string => v != null)
  return { embedded: false, vars }
}

function check (unit: ShellUnit, report: Report): void {
  // Variables that hold a clock reading, e.g. BUILD_DATE=$(date -u +%FT%TZ), followed to where they are used.
  const dateVars = new Map<string, Word>()
  // Variables that hold random output, e.g. SECRET=$(openssl rand -hex 16).
  const randomVars = new Map<string, string>()
  unit.commands.forEach((cmd, index) => {
    const source = randomSource(cmd)
    if (source == null) return
    const w = cmd.words[0] as Word
    const text = unit.source.slice(w.start, cmd.words[cmd.words.length - 1]?.end ?? w.end)
    const reach = randomReaches(unit, index)
    if (reach.embedded) report(RANDOM_EMBEDDED, placeAt(unit, w.start, text, `random output of ${source} is written into the build output`))
    else if (reach.vars.length > 0) for (const v of reach.vars) randomVars.set(v, source)
    else report(NONDETERMINISTIC_VALUE, placeAt(unit, w.start, text, `${source} generates a random value during the build`))
  })
  for (const cmd of unit.commands) {
    const name = commandName(cmd)
    const values = name === 'export' || name === 'readonly' || name === 'local' || name === 'declare' ? [...cmd.assignments, ...cmd.words.slice(1)] : cmd.assignments
    for (const a of values) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(a.raw)
      if (m?.[1] != null && DATE_SUBST.test(a.raw) && !a.raw.includes('SOURCE_DATE_EPOCH')) dateVars.set(m[1], a)
    }
    const dateCommandWritten = name === 'date' && writesFile(cmd)
    if (dateCommandWritten) {
      const w = cmd.words[0] as Word
      report(BUILD_TIME_EMBEDDED, placeAt(unit, w.start, unit.source.slice(w.start, cmd.words[cmd.words.length - 1]?.end ?? w.end), 'the current date is written into a file of the build'))
    }
    cmd.words.forEach((w, k) => {
      if (w.raw.includes('SOURCE_DATE_EPOCH')) return
      if (DATE_SUBST.test(w.raw) && intoArtifact(cmd, k)) {
        const at = offsetOf(w, DATE_SUBST)
        report(BUILD_TIME_EMBEDDED, placeAt(unit, at, unit.lines.lineText(unit.lines.position(at).line), 'the current date is embedded in the build output'))
        return
      }
      for (const [v, assigned] of dateVars) {
        const use = new RegExp(`\\$\\{?${v}\\b`)
        if (use.test(w.raw) && intoArtifact(cmd, k)) {
          const at = offsetOf(w, use)
          report(BUILD_TIME_EMBEDDED, placeAt(unit, at, unit.lines.lineText(unit.lines.position(at).line), `$${v} holds the current date (set at line ${unit.lines.position(assigned.start).line}) and is embedded in the build output`))
          return
        }
      }
      for (const [v, source] of randomVars) {
        const use = new RegExp(`\\$\\{?${v}\\b`)
        if (use.test(w.raw) && intoArtifact(cmd, k)) {
          report(RANDOM_EMBEDDED, placeAt(unit, offsetOf(w, use), w.raw, `$${v} holds random output of ${source} and is written into the build output`))
          return
        }
      }
      if (RANDOM.test(w.raw)) {
        const at = offsetOf(w, RANDOM)
        if (intoArtifact(cmd, k)) report(RANDOM_EMBEDDED, placeAt(unit, at, w.raw, 'a random value is written into the build output'))
        else report(NONDETERMINISTIC_VALUE, placeAt(unit, at, w.raw, 'a random value is generated during the build'))
        return
      }
      if (HOST_OR_TEMP.test(w.raw) && intoArtifact(cmd, k)) {
        const at = offsetOf(w, HOST_OR_TEMP)
        report(NONDETERMINISTIC_VALUE, placeAt(unit, at, w.raw, 'a host name or temporary file name is embedded in the build output'))
      }
    })
    if ((name === 'hostname' || name === 'mktemp') && writesFile(cmd) && cmd.words[0] != null) {
      report(NONDETERMINISTIC_VALUE, placeAt(unit, cmd.words[0].start, name, `the output of ${name} is written into a file of the build`))
    }
  }
}

export const clocks: RuleFamily = {
  rules: [{
    id: BUILD_TIME_EMBEDDED,
    impact: 3,
    severity: 'critical',
    title: 'Build time embedded in an artifact',
    why: 'The time of the build is written into the binary or image (linker flags, a build-date file, a label), so every build differs from every other one.',
    fix: 'Use SOURCE_DATE_EPOCH instead of the clock, e.g. -X main.buildDate=$(date -u -d "@${SOURCE_DATE_EPOCH}" +%Y-%m-%dT%H:%M:%SZ), and set SOURCE_DATE_EPOCH to the commit time (git log -1 --pretty=%ct).'
  }, {
    id: RANDOM_EMBEDDED,
    impact: 2,
    severity: 'critical',
    title: 'Random bytes written into the image',
    why: 'Bytes read from /dev/urandom, openssl rand, uuidgen or $RANDOM and written into a file or an artifact differ on every build, so no two builds of the same source give the same image.',
    fix: 'Derive the value from the source (a hash of the commit, a fixed seed), or generate it when the container starts instead of when the image is built.'
  }, {
    id: NONDETERMINISTIC_VALUE,
    severity: 'medium',
    title: 'Random or host-specific value in the build',
    why: 'Random numbers, UUIDs, host names and temporary file names differ on every machine and every run; once baked into a file they make the output differ. Random output that is seen reaching a file is NR004.',
    fix: 'Derive such values from the source (a commit hash, a fixed name) or keep them out of files that end up in the image.'
  }],
  shell: check
}
