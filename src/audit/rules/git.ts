import { commandText, HEX40, placeAt } from '../context.js'
import type { DockerfileContext, RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const GIT_CLONE_UNPINNED = 'NR030-git-clone-unpinned'

/** git's global options that take a value (`git -C dir clone ...`). */
const GIT_VALUE_FLAGS = new Set(['-C', '-c', '--git-dir', '--work-tree', '--namespace'])

/** The git subcommand and the index of its first argument. */
function gitSub (cmd: SimpleCommand): [string, number] | undefined {
  if (commandName(cmd) !== 'git') return undefined
  for (let k = 1; k < cmd.words.length; k++) {
    const t = cmd.words[k]?.text ?? ''
    if (!t.startsWith('-')) return [t, k + 1]
    if (GIT_VALUE_FLAGS.has(t)) k++
  }
  return undefined
}

/**
 * A revision that names one commit: 40 hex digits, or a variable whose name says it holds a
 * commit (GSTREAMER_COMMIT, SRC_SHA), whose value is supplied elsewhere.
 */
function isCommit (text: string): boolean {
  if (HEX40.test(text)) return true
  return /^\$\{?[A-Za-z0-9_]*(SHA|COMMIT|REV|HASH)[A-Za-z0-9_]*\}?$/i.test(text)
}

function pinsCommit (cmd: SimpleCommand): boolean {
  const sub = gitSub(cmd)
  if (sub == null) return false
  const [name, from] = sub
  const args = cmd.words.slice(from).filter(w => !w.text.startsWith('-')).map(w => w.text)
  if (name === 'checkout' || name === 'switch' || name === 'reset' || name === 'fetch' || name === 'merge') return args.some(isCommit)
  return false
}

function checkShell (unit: ShellUnit, report: Report): void {
  unit.commands.forEach((cmd, index) => {
    const sub = gitSub(cmd)
    if (sub?.[0] !== 'clone') return
    if (unit.commands.slice(index + 1).some(pinsCommit)) return
    const branch = cmd.words.findIndex(w => w.text === '--branch' || w.text === '-b' || w.text.startsWith('--branch='))
    const ref = branch < 0 ? undefined : (cmd.words[branch]?.text.startsWith('--branch=') === true ? cmd.words[branch]?.text.slice(9) : cmd.words[branch + 1]?.text)
    const what = ref == null ? 'the default branch' : `the branch or tag ${ref}`
    report(GIT_CLONE_UNPINNED, placeAt(unit, (cmd.words[0] as Word).start, commandText(cmd), `git clone takes ${what}, which can move, and no git checkout of a commit hash follows`))
  })
}

/** ADD https://host/repo.git#ref: a git source added without a commit. */
function checkDockerfile (ctx: DockerfileContext, report: Report): void {
  for (const ins of ctx.dockerfile.getInstructions()) {
    if (ins.getKeyword() !== 'ADD') continue
    for (const a of ins.getArguments().slice(0, -1)) {
      const v = a.getValue()
      const m = /^(https?:\/\/|git@|ssh:\/\/).*\.git(#(.*))?$/.exec(v) ?? /^(https?:\/\/|git@).*\.git#(.*)$/.exec(v)
      if (m == null) continue
      const ref = (v.split('#')[1] ?? '').split(':')[0] ?? ''
      if (HEX40.test(ref)) continue
      const r = a.getRange()
      const offset = ctx.lines.lineStart(r.start.line + 1) + r.start.character
      report(GIT_CLONE_UNPINNED, placeAt(ctx, offset, v, `ADD of a git repository at ${ref === '' ? 'the default branch' : ref}, not a commit hash`))
    }
  }
}

export const git: RuleFamily = {
  rules: [{
    id: GIT_CLONE_UNPINNED,
    severity: 'high',
    title: 'git clone of a branch or tag without checking out a commit',
    why: 'Branches move and tags can be re-pointed, so a clone of --branch 1.20 (or of the default branch) can give different code on different days.',
    fix: 'Check out a commit hash after cloning: git clone <url> dir && git -C dir checkout <40-hex commit> (or git fetch --depth 1 origin <commit>), and record the hash beside the version.'
  }],
  shell: checkShell,
  dockerfile: checkDockerfile
}
