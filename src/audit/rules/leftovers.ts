import { commandText, placeAt } from '../context.js'
import type { DockerfileContext, RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const COPY_METADATA_IMPLICIT = 'NR050-copy-metadata-implicit'
export const APT_LISTS_LEFT = 'NR051-apt-lists-left'
export const LOGS_LEFT = 'NR052-logs-left'
export const ACCOUNT_DATE = 'NR053-account-date'

/** Destinations where ownership and modes decide what the system does with a file. */
const SYSTEM_PATH = /^\/(etc|usr|bin|sbin|lib|lib64|opt|var|srv|root)(\/|$)/

interface FlaggedInstruction {
  getFlags: () => Array<{ getName: () => string }>
}

function checkDockerfile (ctx: DockerfileContext, report: Report): void {
  for (const ins of ctx.dockerfile.getInstructions()) {
    const keyword = ins.getKeyword()
    if (keyword !== 'COPY' && keyword !== 'ADD') continue
    const flags = (ins as unknown as FlaggedInstruction).getFlags().map(f => f.getName())
    if (flags.includes('chown') || flags.includes('chmod')) continue
    const args = ins.getArguments().map(a => a.getValue())
    if (args.length < 2 || args.some(a => a.startsWith('<<'))) continue
    const dest = args[args.length - 1] ?? ''
    const sources = args.slice(0, -1)
    if (sources.some(s => /^(https?|ftp):\/\//.test(s))) continue
    const wholeTree = sources.some(s => s === '.' || s === './' || s === '/' || s === '*')
    if (!wholeTree && !SYSTEM_PATH.test(dest)) continue
    const r = ins.getRange()
    const offset = ctx.lines.lineStart(r.start.line + 1) + r.start.character
    const message = wholeTree
      ? `${keyword} of a whole source tree keeps the file modes of the checkout it was built from`
      : `${keyword} into ${dest} without --chmod keeps the file modes of the build machine's checkout`
    report(COPY_METADATA_IMPLICIT, placeAt(ctx, offset, ins.getTextContent().split('\n')[0] ?? keyword, message))
  }
}

/** Whether the unit removes a path matching `pattern` (rm), or mounts a cache or tmpfs there, so nothing of it reaches the layer. */
export function removes (unit: ShellUnit, pattern: RegExp): boolean {
  return unit.commands.some(c => commandName(c) === 'rm' && c.words.some(w => pattern.test(w.text))) ||
    unit.runFlags.some(f => /type=(cache|tmpfs)/.test(f.text) && pattern.test(f.text.replace(/^.*target=/, '').split(',')[0] ?? ''))
}

function isAptUpdate (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  return (name === 'apt-get' || name === 'apt') && cmd.words.some(w => w.text === 'update')
}

function isInstall (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  if (name === 'apt-get' || name === 'apt' || name === 'aptitude') return cmd.words.some(w => w.text === 'install' || w.text === 'upgrade' || w.text === 'dist-upgrade')
  return name === 'dpkg' && cmd.words.some(w => w.text === '-i' || w.text === '--install')
}

function checkShell (unit: ShellUnit, report: Report): void {
  // These leave files in the image only when they run inside a Dockerfile RUN.
  if (unit.context !== 'dockerfile') return
  const update = unit.commands.find(isAptUpdate)
  if (update != null && !removes(unit, /^\/var\/lib\/apt\/lists/)) {
    report(APT_LISTS_LEFT, placeAt(unit, (update.words[0] as Word).start, commandText(update), 'apt-get update leaves the package lists of the day in /var/lib/apt/lists'))
  }
  const install = unit.commands.find(isInstall)
  if (install != null && !removes(unit, /^\/var\/log(\/|$)/)) {
    report(LOGS_LEFT, placeAt(unit, (install.words[0] as Word).start, commandText(install), 'package installs write timestamped logs (/var/log/dpkg.log, /var/log/apt/) that stay in the layer'))
  }
  const epochAware = unit.env.has('SOURCE_DATE_EPOCH') || unit.commands.some(c => c.words.some(w => w.raw.includes('SOURCE_DATE_EPOCH')) || c.assignments.some(a => a.raw.startsWith('SOURCE_DATE_EPOCH=')))
  unit.commands.forEach((cmd, index) => {
    const name = commandName(cmd)
    if (name !== 'useradd' && name !== 'adduser') return
    // Debian's `adduser USER GROUP` only adds an existing user to a group; /etc/shadow is not touched.
    if (name === 'adduser' && cmd.words.slice(1).filter(w => !w.text.startsWith('-')).length === 2 && cmd.words.every(w => !w.text.startsWith('-'))) return
    if (epochAware || cmd.words.some(w => w.text === '-e' || w.text.startsWith('--expiredate'))) return
    if (unit.commands.slice(index + 1).some(c => commandName(c) === 'chage' && c.words.some(w => w.text === '-d' || w.text.startsWith('--lastday')))) return
    report(ACCOUNT_DATE, placeAt(unit, (cmd.words[0] as Word).start, commandText(cmd), `${name} writes today's date (days since 1970) into /etc/shadow`))
  })
}

export const leftovers: RuleFamily = {
  rules: [{
    id: COPY_METADATA_IMPLICIT,
    severity: 'low',
    // Found at nearly every COPY of a real repository (41% of Neko's findings): after the other low findings.
    impact: -1,
    leaves: ['/'],
    title: 'COPY/ADD without explicit --chmod',
    why: 'COPY without --chown already writes uid/gid 0, so owners do not vary; without --chmod the modes are those of the build machine\'s checkout (its umask, core.fileMode), which can differ between builders that do not normalise them. neko-rebuilder\'s own rebuilds normalise checkout modes to 0644/0755, so for them this cannot cause a difference.',
    fix: 'Give modes explicitly (COPY --chmod=0644 ...; --chmod=0755 for executables and directories) and copy only what the image needs.'
  }, {
    id: APT_LISTS_LEFT,
    severity: 'high',
    leaves: ['/var/lib/apt/lists'],
    title: 'apt lists left in the image',
    why: '/var/lib/apt/lists holds the package indexes of the day of the build; left in a layer they make it differ from a build on any other day.',
    fix: 'End the same RUN with rm -rf /var/lib/apt/lists/*, or give that step a tmpfs there (RUN --mount=type=tmpfs,target=/var/lib/apt/lists).'
  }, {
    id: LOGS_LEFT,
    severity: 'critical',
    leaves: ['/var/log'],
    title: 'Package manager logs left in the image',
    why: 'dpkg and apt append timestamps to /var/log/dpkg.log and /var/log/apt/*.log on every install.',
    fix: 'Remove them in the same RUN: rm -rf /var/log/apt /var/log/dpkg.log /var/log/alternatives.log (or rm -rf /var/log/*).'
  }, {
    id: ACCOUNT_DATE,
    severity: 'high',
    leaves: ['/etc/shadow'],
    title: 'useradd/adduser writes the date into /etc/shadow',
    why: 'The last-password-change field of /etc/shadow is set to the day of the build, so the file differs between builds on different days.',
    fix: 'Declare ARG SOURCE_DATE_EPOCH in the stage so useradd sees it (recent shadow releases take the date from it), or set the field to a fixed date with chage -d <date> <user> in the same RUN.'
  }],
  dockerfile: checkDockerfile,
  shell: checkShell
}
