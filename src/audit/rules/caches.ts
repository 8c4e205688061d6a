import { commandText, placeAt } from '../context.js'
import type { RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

/**
 * Files that package installs generate with random or time-dependent content: they differ on
 * every rebuild, so they rank critical. Each rule predicts a cause of the `diff` catalogue
 * (src/protocol/causes.ts) and names it.
 */
export const MACHINE_ID_LEFT = 'NR054-machine-id-left'
export const FONT_CACHE_LEFT = 'NR055-font-cache-left'
export const LDCONFIG_CACHE_LEFT = 'NR056-ldconfig-cache-left'
export const PYTHON_BYTECODE = 'NR058-python-bytecode'

/** Packages whose maintainer scripts create /etc/machine-id or /var/lib/dbus/machine-id. */
const MACHINE_ID_PACKAGES = /^(dbus|dbus-x11|dbus-daemon|dbus-system-bus-common|dbus-user-session|systemd|systemd-sysv|systemd-container|udev)([=:].*)?$/
/** Packages that install fonts, or fontconfig itself: their triggers run fc-cache. */
const FONT_PACKAGES = /^(fonts-.*|xfonts-.*|ttf-.*|fontconfig|fontconfig-config)([=:].*)?$/

function installed (cmd: SimpleCommand): string[] {
  const name = commandName(cmd)
  const words = cmd.words.map(w => w.text)
  if ((name === 'apt-get' || name === 'apt' || name === 'aptitude') && words.includes('install')) {
    return words.slice(words.indexOf('install') + 1).filter(w => !w.startsWith('-'))
  }
  return []
}

function removes (unit: ShellUnit, pattern: RegExp): boolean {
  return unit.commands.some(c => (commandName(c) === 'rm' || commandName(c) === 'truncate' || commandName(c) === 'find') && c.words.some(w => pattern.test(w.text))) ||
    unit.runFlags.some(f => /type=tmpfs/.test(f.text) && pattern.test(f.text.replace(/^.*target=/, '').split(',')[0] ?? ''))
}

function checkShell (unit: ShellUnit, report: Report): void {
  // Only a Dockerfile RUN leaves these files in a layer.
  if (unit.context !== 'dockerfile') return
  const installs = unit.commands.map(c => ({ cmd: c, pkgs: installed(c) })).filter(x => x.pkgs.length > 0)
  const at = (cmd: SimpleCommand): number => (cmd.words[0] as Word).start
  const machine = installs.find(x => x.pkgs.some(p => MACHINE_ID_PACKAGES.test(p)))
  if (machine != null && !removes(unit, /^\/(etc\/machine-id|var\/lib\/dbus\/machine-id|var\/lib\/dbus\/?\*?)$/)) {
    const which = machine.pkgs.filter(p => MACHINE_ID_PACKAGES.test(p)).join(', ')
    report(MACHINE_ID_LEFT, placeAt(unit, at(machine.cmd), commandText(machine.cmd), `installing ${which} generates a random machine id (/etc/machine-id, /var/lib/dbus/machine-id) that differs on every build`))
  }
  const fonts = installs.find(x => x.pkgs.some(p => FONT_PACKAGES.test(p)))
  if (fonts != null && !removes(unit, /^\/var\/cache\/fontconfig(\/\*?)?$/)) {
    report(FONT_CACHE_LEFT, placeAt(unit, at(fonts.cmd), commandText(fonts.cmd), 'installing fonts runs fc-cache, whose /var/cache/fontconfig/*.cache-* files record the time of the build'))
  }
  const first = installs[0]
  if (first != null && !removes(unit, /^\/var\/cache\/ldconfig(\/aux-cache|\/\*?)?$/)) {
    report(LDCONFIG_CACHE_LEFT, placeAt(unit, at(first.cmd), commandText(first.cmd), 'package installs run ldconfig, which records inode numbers and times in /var/cache/ldconfig/aux-cache'))
  }
  const bytecodeOff = unit.env.has('PYTHONDONTWRITEBYTECODE') || unit.commands.some(c => c.assignments.some(a => a.raw.startsWith('PYTHONDONTWRITEBYTECODE=')))
  for (const cmd of unit.commands) {
    const name = commandName(cmd)
    const words = cmd.words.map(w => w.text)
    const pip = name === 'pip' || name === 'pip3' || (/^python3?(\.\d+)?$/.test(name) && words.includes('pip'))
    if (!pip || !words.includes('install') || words.includes('--no-compile') || bytecodeOff) continue
    if (removes(unit, /__pycache__|\.pyc/)) continue
    report(PYTHON_BYTECODE, placeAt(unit, at(cmd), commandText(cmd), 'pip compiles .pyc files that record the install time of each source file'))
    break
  }
}

export const caches: RuleFamily = {
  rules: [{
    id: MACHINE_ID_LEFT,
    impact: 1,
    severity: 'critical',
    leaves: ['/etc/machine-id', '/var/lib/dbus/machine-id'],
    title: 'Random machine id left in the image',
    why: 'dbus and systemd generate /etc/machine-id or /var/lib/dbus/machine-id from random bytes when installed; the layer differs on every build (cause machine-id).',
    fix: 'Remove them in the same RUN: rm -f /etc/machine-id /var/lib/dbus/machine-id (they are generated at first boot), or truncate -s 0 /etc/machine-id.'
  }, {
    id: FONT_CACHE_LEFT,
    impact: 1,
    severity: 'critical',
    leaves: ['/var/cache/fontconfig'],
    title: 'Font caches left in the image',
    why: 'fc-cache writes /var/cache/fontconfig/*.cache-* with the scan time and directory times; they differ on every build (cause fontconfig-cache).',
    fix: 'Remove them in the same RUN: rm -rf /var/cache/fontconfig/* (rebuilt at first use).'
  }, {
    id: LDCONFIG_CACHE_LEFT,
    severity: 'critical',
    leaves: ['/var/cache/ldconfig'],
    title: 'ldconfig auxiliary cache left in the image',
    why: 'ldconfig stores the inode numbers and change times of the libraries it scanned in /var/cache/ldconfig/aux-cache; it differs on every build (cause ldconfig-aux-cache).',
    fix: 'Remove it in the same RUN: rm -f /var/cache/ldconfig/aux-cache.'
  }, {
    id: PYTHON_BYTECODE,
    impact: 1,
    severity: 'critical',
    leaves: ['/'],
    title: 'Python bytecode compiled at build time',
    why: 'Timestamp-based .pyc files record the mtime of their source, which is the time of the build for files pip writes (cause python-bytecode).',
    fix: 'ENV PYTHONDONTWRITEBYTECODE=1 and pip install --no-compile, or remove __pycache__ directories in the same RUN.'
  }],
  shell: checkShell
}
