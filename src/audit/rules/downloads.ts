import { commandText, HEX40, placeAt } from '../context.js'
import type { DockerfileContext, RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const DOWNLOAD_UNVERIFIED = 'NR020-download-unverified'
export const ADD_URL_UNVERIFIED = 'NR021-add-url-unverified'
export const REMOTE_SCRIPT_PIPED = 'NR022-remote-script-piped'
export const GPG_KEY_UNVERIFIED = 'NR023-gpg-key-unverified'
export const PACKAGE_SOURCE_MUTABLE = 'NR024-package-source-mutable'

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ash', 'ksh', 'python', 'python3', 'perl', 'ruby', 'node'])
const CHECKSUM_TOOLS = /^(sha(1|224|256|384|512)sum|b2sum|shasum)$/
const KEY_PLACE = /trusted\.gpg|keyrings?\/|\.(gpg|asc|pub)$|gpgkey|\/key$|\.key$/i
const SOURCES_PLACE = /sources\.list|\.sources$|yum\.repos\.d|\.repo$|apk\/repositories/

interface Download {
  index: number
  cmd: SimpleCommand
  url: Word | undefined
  /** Where the file is written, when known (`-O`, `-o`, a redirect or a tee later in the pipe). */
  destination: string | undefined
}

/** The value of a short option that may be bundled (`-qO-`, `-fsSLo file`). */
function bundledValue (cmd: SimpleCommand, letter: string, long: string[]): string | undefined {
  for (let k = 1; k < cmd.words.length; k++) {
    const t = cmd.words[k]?.text ?? ''
    for (const l of long) {
      if (t === l) return cmd.words[k + 1]?.text
      if (t.startsWith(`${l}=`)) return t.slice(l.length + 1)
    }
    const m = new RegExp(`^-[a-zA-Z]*${letter}(.*)$`).exec(t)
    if (m != null && !t.startsWith('--')) return m[1] !== '' ? m[1] : cmd.words[k + 1]?.text
  }
  return undefined
}

function downloadsOf (unit: ShellUnit): Download[] {
  const out: Download[] = []
  unit.commands.forEach((cmd, index) => {
    const name = commandName(cmd)
    if (name !== 'wget' && name !== 'curl') return
    if (cmd.words.some(w => ['--spider', '-I', '--head', '--version', '-V', '--help'].includes(w.text))) return
    const url = cmd.words.find(w => /^(https?|ftp):\/\//i.test(w.text)) ?? cmd.words.find((w, k) => k > 0 && /^\$\{?[A-Za-z_]*URL/i.test(w.text))
    if (url == null) return
    let destination = name === 'wget'
      ? bundledValue(cmd, 'O', ['--output-document'])
      : bundledValue(cmd, 'o', ['--output'])
    if (destination == null || destination === '-') {
      // Follow the pipe to where the bytes land: `| tee file`, `| gpg --dearmor > file`.
      for (let k = index; k < unit.commands.length; k++) {
        const c = unit.commands[k] as SimpleCommand
        const redirect = c.redirects.find(r => r.op === '>' || r.op === '>>')
        if (redirect != null) { destination = redirect.target.text; break }
        if (k > index && commandName(c) === 'tee') { destination = c.words.find((w, i) => i > 0 && !w.text.startsWith('-'))?.text; break }
        if (c.next !== '|') break
      }
    }
    if (destination === '/dev/null') return
    out.push({ index, cmd, url, destination })
  })
  return out
}

/** The commands a download's output is piped into. */
function pipedInto (unit: ShellUnit, index: number): SimpleCommand[] {
  const out: SimpleCommand[] = []
  for (let k = index; k < unit.commands.length - 1 && unit.commands[k]?.next === '|'; k++) out.push(unit.commands[k + 1] as SimpleCommand)
  return out
}

function isChecksumCheck (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  if (CHECKSUM_TOOLS.test(name) && cmd.words.some(w => w.text === '-c' || w.text === '--check' || /^-[a-z]*c$/.test(w.text))) return true
  if ((name === 'gpg' || name === 'gpg2') && cmd.words.some(w => w.text === '--verify')) return true
  if (name === 'gpgv' || (name === 'cosign' && cmd.words[1]?.text === 'verify-blob') || ((name === 'minisign' || name === 'signify') && cmd.words.some(w => w.text === '-V'))) return true
  // [ "$(sha256sum f | cut -d' ' -f1)" = "$EXPECTED" ]
  if (['[', '[[', 'test'].includes(name) && cmd.words.some(w => /sha(256|384|512)sum|b2sum|openssl\s+dgst/.test(w.raw))) return true
  return false
}

function isFingerprintCheck (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  if (name !== 'gpg' && name !== 'gpg2') return false
  return cmd.words.some(w => ['--fingerprint', '--show-keys', '--with-fingerprint', '--with-colons'].includes(w.text) || w.text.startsWith('--import-options=show-only')) ||
    (cmd.words.some(w => w.text === '--recv-keys') && cmd.words.some(w => /^(0x)?[0-9A-F]{40}$/i.test(w.text)))
}

function mutableSourceUrl (url: string): boolean {
  const raw = /^https?:\/\/raw\.githubusercontent\.com\/[^/]+\/[^/]+\/([^/]+)\//.exec(url)
  if (raw != null) return !HEX40.test(raw[1] ?? '')
  const blob = /^https?:\/\/(github|gitlab)\.com\/.+\/(raw|blob)\/([^/]+)\//.exec(url)
  if (blob != null) return !HEX40.test(blob[3] ?? '')
  return true
}

function checkShell (unit: ShellUnit, report: Report): void {
  for (const d of downloadsOf(unit)) {
    const later = unit.commands.slice(d.index + 1)
    const verified = later.some(isChecksumCheck)
    const pipe = pipedInto(unit, d.index)
    const url = d.url?.text ?? ''
    const at = (d.cmd.words[0] as Word).start
    const text = commandText(d.cmd)
    const shell = pipe.find(c => SHELLS.has(commandName(c)))
    if (shell != null) {
      report(REMOTE_SCRIPT_PIPED, placeAt(unit, at, `${text} | ${commandText(shell)}`, `a script from ${url} is run as soon as it is downloaded, unchecked`))
      continue
    }
    // sh -c "$(curl ...)", bash <(curl ...): the substitution's output is the script
    const holder = d.cmd.substitutionOf
    if (holder != null && SHELLS.has(commandName(holder))) {
      const word = holder.words.find(w => w.start <= at && at < w.end) ?? holder.words[0] as Word
      report(REMOTE_SCRIPT_PIPED, placeAt(unit, word.start, commandText(holder), `a script from ${url} is run as soon as it is downloaded, unchecked`))
      continue
    }
    const intoGpg = pipe.some(c => ['gpg', 'gpg2'].includes(commandName(c)) && c.words.some(w => w.text === '--dearmor' || w.text === '--import')) ||
      pipe.some(c => commandName(c) === 'apt-key')
    if (intoGpg || KEY_PLACE.test(d.destination ?? '') || KEY_PLACE.test(url)) {
      if (!verified && !later.some(isFingerprintCheck)) {
        report(GPG_KEY_UNVERIFIED, placeAt(unit, at, text, `the signing key from ${url} is trusted without checking its fingerprint`))
      }
      continue
    }
    if (SOURCES_PLACE.test(d.destination ?? '') || /\.(list|sources|repo)$/.test(url)) {
      if (!verified) {
        const why = mutableSourceUrl(url) ? 'from a mutable URL' : 'without a checksum'
        report(PACKAGE_SOURCE_MUTABLE, placeAt(unit, at, text, `the package source list ${d.destination ?? ''} is downloaded ${why} (${url})`.replace('  ', ' ')))
      }
      continue
    }
    if (!verified) report(DOWNLOAD_UNVERIFIED, placeAt(unit, at, text, `${url} is downloaded and used without a checksum check`))
  }
}

function checkDockerfile (ctx: DockerfileContext, report: Report): void {
  for (const ins of ctx.dockerfile.getInstructions()) {
    if (ins.getKeyword() !== 'ADD') continue
    const flags = (ins as unknown as { getFlags: () => Array<{ getName: () => string }> }).getFlags()
    if (flags.some(f => f.getName() === 'checksum')) continue
    const args = ins.getArguments()
    for (const a of args.slice(0, -1)) {
      const v = a.getValue()
      if (!/^(https?|ftp):\/\//i.test(v) || /\.git(#|$)/.test(v)) continue
      const r = a.getRange()
      const offset = ctx.lines.lineStart(r.start.line + 1) + r.start.character
      report(ADD_URL_UNVERIFIED, placeAt(ctx, offset, ins.getTextContent().split('\n')[0] ?? v, `ADD downloads ${v} without --checksum`))
    }
  }
}

export const downloads: RuleFamily = {
  rules: [{
    id: DOWNLOAD_UNVERIFIED,
    severity: 'high',
    title: 'Download without a checksum check',
    why: 'A file fetched by URL can change on the server (a new upload, a mirror, an attacker) and the build silently uses whatever arrives, so builds differ or carry unreviewed code.',
    fix: 'Check every download against a recorded digest right after fetching it: echo "<sha256>  file" | sha256sum -c -, or vendor the file in the repository.'
  }, {
    id: ADD_URL_UNVERIFIED,
    severity: 'high',
    title: 'ADD of a URL without --checksum',
    why: 'ADD <url> takes whatever the server returns at build time.',
    fix: 'Add the expected digest: ADD --checksum=sha256:<digest> https://... /dest (Dockerfile syntax 1.6 or later).'
  }, {
    id: REMOTE_SCRIPT_PIPED,
    severity: 'high',
    title: 'Remote script piped to a shell',
    why: 'curl ... | sh runs whatever the server sends at that moment; nothing records or checks what ran.',
    fix: 'Download the script to a file, check it with sha256sum -c against a recorded digest, then run it, or vendor it.'
  }, {
    id: GPG_KEY_UNVERIFIED,
    severity: 'high',
    title: 'Signing key fetched without a fingerprint check',
    why: 'Trusting a key exactly as downloaded lets whoever controls the URL decide which packages verify; the key file itself can change between builds.',
    fix: 'Compare the key with a known fingerprint (gpg --show-keys --with-colons key | grep <fingerprint>) or a recorded sha256 before installing it, or vendor the key.'
  }, {
    id: PACKAGE_SOURCE_MUTABLE,
    severity: 'high',
    title: 'Package source list fetched from a mutable URL',
    why: 'A sources list fetched from a branch (e.g. raw.githubusercontent.com/.../main/...) can point the package manager at other repositories at any time, and nothing records what it said.',
    fix: 'Write the source entry in the Dockerfile (echo "deb [signed-by=...] https://... stable main" > /etc/apt/sources.list.d/x.list), or fetch it from a commit URL and check its sha256.'
  }],
  shell: checkShell,
  dockerfile: checkDockerfile
}
