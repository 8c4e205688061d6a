import { commandText, placeAt } from '../context.js'
import type { RuleFamily, ShellUnit } from '../context.js'
import { commandName, operands } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const APT_UNPINNED = 'NR010-apt-unpinned'
export const APK_UNPINNED = 'NR011-apk-unpinned'
export const PIP_UNPINNED = 'NR012-pip-unpinned'
export const NPM_NOT_CI = 'NR013-npm-install-not-ci'
export const NPM_UNPINNED = 'NR014-npm-package-unpinned'
export const GEM_UNPINNED = 'NR015-gem-unpinned'
export const GO_INSTALL_UNPINNED = 'NR016-go-install-unpinned'

const APT_VALUE_FLAGS = new Set(['-o', '-c', '-t', '--target-release', '--option', '--config-file'])
const APK_VALUE_FLAGS = new Set(['-t', '--virtual', '-X', '--repository', '-p', '--root', '--arch', '--repositories-file', '--cache-dir', '--keys-dir'])
const PIP_VALUE_FLAGS = new Set(['-i', '--index-url', '--extra-index-url', '-f', '--find-links', '-t', '--target', '--prefix', '--root', '--platform',
  '--python-version', '--implementation', '--abi', '--src', '--upgrade-strategy', '--cache-dir', '--log', '--timeout', '--retries', '--trusted-host', '--progress-bar', '--only-binary', '--no-binary'])
const NPM_VALUE_FLAGS = new Set(['--prefix', '--registry', '--cache', '--omit', '--include', '--tag', '-w', '--workspace', '--userconfig'])
const GEM_VALUE_FLAGS = new Set(['-i', '--install-dir', '-n', '--bindir', '--source', '-s', '--platform', '-P', '--trust-policy'])

/** Index of the first word after the command name that is not an option (or an option's value); -1 when none. */
function subcommand (cmd: SimpleCommand, valueFlags: ReadonlySet<string>): number {
  for (let k = 1; k < cmd.words.length; k++) {
    const t = cmd.words[k]?.text ?? ''
    if (!t.startsWith('-')) return k
    if (valueFlags.has(t)) k++
  }
  return -1
}

/** Operands that name a local file or directory rather than a package from a repository. */
function isLocal (text: string): boolean {
  return /^(\.{1,2}\/|\/|~\/)/.test(text) || /\.(deb|apk|rpm|whl|tar\.gz|tgz|zip|gem)$/.test(text) || text === '.'
}

/** Operands that are variables: their values are not known here, so they are not judged. */
function isVariable (text: string): boolean {
  return /^\$/.test(text)
}

function reportPackages (unit: ShellUnit, cmd: SimpleCommand, at: Word, ruleId: string, unpinned: Word[], what: string, report: Report): void {
  if (unpinned.length === 0) return
  const names = unpinned.map(w => w.text)
  const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')} and ${names.length - 8} more` : names.join(', ')
  report(ruleId, placeAt(unit, at.start, commandText(cmd), `${names.length} ${names.length === 1 ? what.replace(/s$/, '') : what} installed without a pinned version: ${shown}`))
}

function apt (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  const name = commandName(cmd)
  if (name !== 'apt-get' && name !== 'apt' && name !== 'aptitude') return
  const sub = subcommand(cmd, APT_VALUE_FLAGS)
  if (sub < 0 || cmd.words[sub]?.text !== 'install') return
  const pkgs = operands(cmd, sub + 1, APT_VALUE_FLAGS).filter(w => !isLocal(w.text) && !isVariable(w.text) && !w.text.includes('='))
  reportPackages(unit, cmd, cmd.words[0] as Word, APT_UNPINNED, pkgs, 'Debian packages', report)
}

function apk (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  if (commandName(cmd) !== 'apk') return
  const sub = subcommand(cmd, APK_VALUE_FLAGS)
  if (sub < 0 || cmd.words[sub]?.text !== 'add') return
  const pkgs = operands(cmd, sub + 1, APK_VALUE_FLAGS).filter(w => !isLocal(w.text) && !isVariable(w.text) && !/[=~<>]/.test(w.text))
  reportPackages(unit, cmd, cmd.words[0] as Word, APK_UNPINNED, pkgs, 'Alpine packages', report)
}

/** Whether every requirement line of a requirements file carries a --hash. */
function requirementsHashed (unit: ShellUnit, file: string): boolean {
  const candidates = [file, `${unit.dir === '' ? '' : `${unit.dir}/`}${file}`].map(p => p.replace(/^\.\//, '').replace(/\/\.\//g, '/'))
  for (const path of candidates) {
    const text = unit.lookup(path)
    if (text == null) continue
    const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map(l => l.replace(/(^|\s)#.*$/, '').trim()).filter(l => l !== '' && !l.startsWith('-'))
    return logical.length > 0 && logical.every(l => l.includes('--hash='))
  }
  return false
}

function pip (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  const name = commandName(cmd)
  let k: number
  if (/^pip[0-9.]*$/.test(name) || name === 'uv' || name === 'pipx') k = 1
  else if (/^python[0-9.]*$/.test(name) && cmd.words[1]?.text === '-m' && /^pip[0-9.]*$/.test(cmd.words[2]?.text ?? '')) k = 3
  else return
  if (name === 'uv' && cmd.words[1]?.text === 'pip') k = 2
  if (cmd.words[k]?.text !== 'install') return
  if (cmd.words.some(w => w.text === '--require-hashes')) return
  const unpinned: Word[] = []
  for (let i = k + 1; i < cmd.words.length; i++) {
    const w = cmd.words[i] as Word
    if (w.text === '-r' || w.text === '--requirement' || w.text.startsWith('--requirement=') || (w.text.startsWith('-r') && w.text.length > 2)) {
      const file = w.text === '-r' || w.text === '--requirement' ? cmd.words[++i] : { ...w, text: w.text.replace(/^(--requirement=|-r)/, '') }
      if (file != null && !isVariable(file.text) && !requirementsHashed(unit, file.text)) unpinned.push({ ...file, text: `-r ${file.text} (no hashes)` })
      continue
    }
    if (w.text === '-c' || w.text === '--constraint' || w.text === '-e' || w.text === '--editable') { i++; continue }
    if (w.text.startsWith('-')) {
      if (PIP_VALUE_FLAGS.has(w.text)) i++
      continue
    }
    if (isLocal(w.text) || isVariable(w.text) || /===?/.test(w.text) || /@\s*(https?|git\+)/.test(w.text) || /^(https?|git\+)/.test(w.text)) continue
    unpinned.push(w)
  }
  reportPackages(unit, cmd, cmd.words[0] as Word, PIP_UNPINNED, unpinned, 'Python packages', report)
}

/** An npm package spec pinned to one exact version (`pkg@1.2.3`, `@scope/pkg@1.2.3`). */
function npmExact (spec: string): boolean {
  const at = spec.lastIndexOf('@')
  if (at <= 0) return false
  const version = spec.slice(at + 1)
  // A version in a variable is set elsewhere: not judged here.
  return version.startsWith('$') || /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)
}

function npm (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  const name = commandName(cmd)
  const sub = cmd.words[1]?.text ?? ''
  if (name === 'npm' && ['install', 'i', 'add', 'isntall', 'in'].includes(sub)) {
    const pkgs = operands(cmd, 2, NPM_VALUE_FLAGS).filter(w => !isLocal(w.text) && !isVariable(w.text))
    if (pkgs.length === 0) {
      report(NPM_NOT_CI, placeAt(unit, (cmd.words[0] as Word).start, commandText(cmd), 'npm install resolves versions again and may rewrite the lockfile; npm ci installs exactly what the lockfile says'))
      return
    }
    reportPackages(unit, cmd, cmd.words[0] as Word, NPM_UNPINNED, pkgs.filter(w => !npmExact(w.text)), 'npm packages', report)
    return
  }
  if (name === 'yarn' && (sub === 'install' || cmd.words.length === 1) && !cmd.words.some(w => ['--frozen-lockfile', '--immutable', '--pure-lockfile'].includes(w.text))) {
    report(NPM_NOT_CI, placeAt(unit, (cmd.words[0] as Word).start, commandText(cmd), 'yarn install without --frozen-lockfile (or --immutable) may resolve new versions'))
  }
  if (name === 'pnpm' && (sub === 'install' || sub === 'i') && operands(cmd, 2, NPM_VALUE_FLAGS).length === 0 && !cmd.words.some(w => w.text === '--frozen-lockfile')) {
    report(NPM_NOT_CI, placeAt(unit, (cmd.words[0] as Word).start, commandText(cmd), 'pnpm install without --frozen-lockfile may resolve new versions'))
  }
}

function gem (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  if (commandName(cmd) !== 'gem' || cmd.words[1]?.text !== 'install') return
  if (cmd.words.some(w => w.text === '-v' || w.text === '--version' || w.text.startsWith('--version='))) return
  const pkgs = operands(cmd, 2, GEM_VALUE_FLAGS).filter(w => !isLocal(w.text) && !isVariable(w.text) && !/:\d/.test(w.text))
  reportPackages(unit, cmd, cmd.words[0] as Word, GEM_UNPINNED, pkgs, 'Ruby gems', report)
}

function goInstall (unit: ShellUnit, cmd: SimpleCommand, report: Report): void {
  if (commandName(cmd) !== 'go' || cmd.words[1]?.text !== 'install') return
  for (const w of operands(cmd, 2, new Set(['-ldflags', '-tags', '-o', '-gcflags', '-mod']))) {
    if (isLocal(w.text) || isVariable(w.text) || !w.text.includes('.')) continue
    const version = w.text.includes('@') ? w.text.slice(w.text.lastIndexOf('@') + 1) : ''
    if (version.startsWith('$')) continue
    if (version === '' || version === 'latest' || version === 'master' || version === 'main' || version === 'upgrade' || version === 'patch') {
      report(GO_INSTALL_UNPINNED, placeAt(unit, w.start, commandText(cmd), `go install ${w.text} resolves the newest version at build time`))
    }
  }
}

function check (unit: ShellUnit, report: Report): void {
  for (const cmd of unit.commands) {
    apt(unit, cmd, report)
    apk(unit, cmd, report)
    pip(unit, cmd, report)
    npm(unit, cmd, report)
    gem(unit, cmd, report)
    goInstall(unit, cmd, report)
  }
}

const PIN_WHY = 'Package repositories publish new versions all the time; an install without a version gets whatever is newest on the day of the build, so later builds install different files.'

export const packages: RuleFamily = {
  rules: [{
    id: APT_UNPINNED,
    severity: 'high',
    title: 'Debian/Ubuntu packages installed without versions',
    why: PIN_WHY,
    fix: 'Pin each package (apt-get install pkg=1.2-3), taking versions from a reference build, and install from a dated snapshot mirror (snapshot.debian.org) so those versions stay available.'
  }, {
    id: APK_UNPINNED,
    severity: 'high',
    title: 'Alpine packages installed without versions',
    why: PIN_WHY,
    fix: 'Pin each package (apk add pkg=1.2.3-r0) and the repository branch it comes from.'
  }, {
    id: PIP_UNPINNED,
    severity: 'high',
    title: 'Python packages installed without versions or hashes',
    why: PIN_WHY,
    fix: 'Pin with == (pip install meson==1.4.0), or better install from a requirements file with --hash entries and --require-hashes (pip-compile --generate-hashes writes one).'
  }, {
    id: NPM_NOT_CI,
    severity: 'medium',
    title: 'npm install where a lockfile install fits',
    why: 'npm install (and yarn/pnpm install without a frozen lockfile) may resolve different versions than the lockfile records and rewrite it; only a lockfile install is repeatable.',
    fix: 'Copy package-lock.json in and run npm ci (yarn install --frozen-lockfile, pnpm install --frozen-lockfile).'
  }, {
    id: NPM_UNPINNED,
    severity: 'high',
    title: 'npm packages installed without an exact version',
    why: PIN_WHY,
    fix: 'Install exact versions (npm install -g pkg@1.2.3), or list the tool in package.json and install with npm ci.'
  }, {
    id: GEM_UNPINNED,
    severity: 'high',
    title: 'Ruby gems installed without versions',
    why: PIN_WHY,
    fix: 'Pin with gem install pkg -v 1.2.3, or use a Gemfile.lock with bundle install --frozen.'
  }, {
    id: GO_INSTALL_UNPINNED,
    severity: 'high',
    title: 'go install of @latest or without a version',
    why: 'go install pkg@latest fetches whatever version is newest at build time.',
    fix: 'Install an exact version (go install example.com/tool@v1.2.3); the Go checksum database then pins its content.'
  }],
  shell: check
}
