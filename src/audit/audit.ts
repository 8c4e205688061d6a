import { readFileSync, statSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { posix, resolve, sep } from 'node:path'
import { componentLog, type LoggerComponents } from '../node/logger.js'
import type { DockerfileContext, Lookup, ShellUnit } from './context.js'
import { discover, included, MAX_FILE_BYTES } from './discover.js'
import { BASE_IMAGE_UNPINNED } from './rules/base-images.js'
import { applySuppressions, parseSuppressions, ruleMatches, SUPPRESS_FILE, type Suppression } from './suppress.js'

/** Paths a release build does not read: development setups, tests, examples. */
const DEV_ONLY = /(^|\/)(dev|devcontainer|\.devcontainer|test|tests|examples?)\//
import { loadDockerfile } from './dockerfile.js'
import type { LoadedDockerfile } from './dockerfile.js'
import { AuditRootError } from './errors.js'
import { compareText, createLineIndex, snippet } from './lines.js'
import { FAMILIES, RULES, ruleById } from './registry.js'
import { createScope } from './scope.js'
import { parseShell } from './shell.js'
import { SEVERITIES } from './types.js'
import type { AuditedFile, AuditFileError, AuditOptions, AuditReport, Finding, Place, Report } from './types.js'
import { loadWorkflow } from './workflow.js'


/** `--exclude` arguments: rule ids, short (`NR050`) or full, else paths and globs. */
function splitExclude (given: readonly string[]): { rules: string[], paths: string[] } {
  const rules = given.filter(g => /^NR\d{3}([a-z0-9-]*)$/.test(g))
  return { rules, paths: given.filter(g => !rules.includes(g)) }
}

/** Reads a repository file, refusing paths that leave the repository and files over the size limit. */
async function readRepoFile (root: string, rel: string): Promise<string> {
  const abs = resolve(root, rel)
  if (abs !== root && !abs.startsWith(root + sep)) throw new Error('outside the repository')
  const info = await stat(abs)
  if (info.isDirectory()) throw new Error('is a directory, not a file')
  if (info.size > MAX_FILE_BYTES) throw new Error(`${info.size} bytes exceeds the limit of ${MAX_FILE_BYTES}`)
  return await readFile(abs, 'utf8')
}

function createLookup (root: string): Lookup {
  return (rel: string) => {
    try {
      const abs = resolve(root, rel)
      if (!abs.startsWith(root + sep)) return undefined
      if (statSync(abs).size > MAX_FILE_BYTES) return undefined
      return readFileSync(abs, 'utf8')
    } catch {
      return undefined
    }
  }
}

/**
 * Audits a repository's Dockerfiles, Dockerfile templates, shell build scripts and GitHub
 * workflows for causes of unreproducible images. Unreadable or malformed files are listed
 * in `errors`; the audit goes on without them.
 */
export async function auditRepository (root: string, opts: AuditOptions = {}, components: LoggerComponents = {}): Promise<AuditReport> {
  const log = componentLog(components.logger, 'audit')
  const abs = resolve(root)
  let info
  try {
    info = await stat(abs)
  } catch (err) {
    throw new AuditRootError(root, `cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  if (!info.isDirectory()) throw new AuditRootError(root, 'is not a directory')
  const followTemplates = opts.followTemplates ?? true
  const lookup = createLookup(abs)
  const discovered = await discover(abs, opts.include)
  const errors: AuditFileError[] = [...discovered.errors]
  // A pattern that matches nothing is most likely a typo: an audit of nothing must not pass a gate.
  for (const pattern of opts.include ?? []) {
    if (!discovered.files.some(f => included(f.path, [pattern]))) errors.push({ path: pattern, message: '--include matches no audited file', kind: 'config' })
  }
  const exclude = splitExclude(opts.exclude ?? [])
  for (const pattern of exclude.paths) {
    if (!discovered.files.some(f => included(f.path, [pattern]))) errors.push({ path: pattern, message: '--exclude matches no audited file', kind: 'config' })
  }
  for (const rule of exclude.rules) {
    if (!RULES.some(r => ruleMatches(rule, r.id))) errors.push({ path: rule, message: '--exclude names no rule', kind: 'config' })
  }
  const excludedPath = (path: string): boolean => exclude.paths.length > 0 && included(path, exclude.paths)
  const found = { ...discovered, files: discovered.files.filter(f => !excludedPath(f.path)) }
  const files = new Map<string, AuditedFile>(found.files.map(f => [f.path, f]))
  const findings = new Map<string, Finding>()

  const report: Report = (ruleId: string, place: Place) => {
    const rule = ruleById(ruleId)
    if (rule == null) throw new Error(`unknown rule ${ruleId}`)
    const key = `${ruleId}\0${place.path}\0${place.line}\0${place.column ?? 0}`
    if (findings.has(key)) return
    findings.set(key, {
      ruleId,
      severity: rule.severity,
      title: rule.title,
      path: place.path,
      line: place.line,
      ...(place.column != null ? { column: place.column } : {}),
      text: snippet(place.text),
      message: place.message,
      why: rule.why,
      fix: rule.fix,
      ...(place.via != null ? { via: place.via } : {})
    })
  }
  const runDockerfile = async (ctx: DockerfileContext, units: ShellUnit[]): Promise<void> => {
    for (const f of FAMILIES) f.dockerfile?.(ctx, report)
    await runUnits(units)
  }
  // A rule may read more shell (a package.json script a command runs), which parses asynchronously.
  const runUnits = async (units: ShellUnit[]): Promise<void> => {
    for (const unit of units) for (const f of FAMILIES) await f.shell?.(unit, report)
  }
  const texts = new Map<string, string>()
  const read = async (path: string): Promise<string | undefined> => {
    const cached = texts.get(path)
    if (cached != null) return cached
    try {
      const text = await readRepoFile(abs, path)
      texts.set(path, text)
      return text
    } catch (err) {
      errors.push({ path, message: `unreadable: ${(err as Error).message}` })
      return undefined
    }
  }
  const accept = (path: string, loaded: LoadedDockerfile): boolean => {
    if (loaded.problems.length > 0) {
      errors.push({ path, message: `not a valid Dockerfile: ${loaded.problems.join('; ')}` })
      return false
    }
    for (const w of loaded.warnings) errors.push({ path, message: `shell not fully parsed: ${w}` })
    return true
  }

  /**
   * The files a template's `FROM <relative path>` includes: a directory means its Dockerfile.
   * A path with a variable the template gives no default (`./runtime/$RUNTIME_DOCKERFILE`,
   * set by the build's environment) includes every Dockerfile it can match, since any of them may be built.
   */
  const includeTargets = (template: string, image: string, line: number): string[] => {
    const joined = posix.normalize(posix.join(posix.dirname(template), image))
    if (joined === '..' || joined.startsWith('../')) {
      errors.push({ path: template, message: `line ${line}: include ${image} is outside the repository` })
      return []
    }
    if (image.includes('$')) {
      const pattern = (image.endsWith('/') ? posix.join(joined, 'Dockerfile') : joined)
        .split(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/)
        .map(part => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
        .join('[^/]+')
      const re = new RegExp(`^${pattern}$`)
      const matches = found.files.filter(f => f.kind === 'dockerfile' && re.test(f.path)).map(f => f.path)
      if (matches.length === 0) errors.push({ path: template, message: `line ${line}: include ${image} names a build argument with no default and matches no Dockerfile` })
      return matches
    }
    const isDir = image.endsWith('/') || (!files.has(joined) && lookup(posix.join(joined, 'Dockerfile')) != null)
    return [isDir ? posix.join(joined, 'Dockerfile') : joined]
  }

  /** A file that makes a parser or a rule throw is reported, not fatal: the rest of the repository is still audited. */
  const guard = async (path: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn()
    } catch (err) {
      log.warn({ path, err }, 'audit of a file failed')
      errors.push({ path, message: `could not be audited: ${(err as Error).message}` })
    }
  }

  /** A Dockerfile, workflow or script audited on its own. */
  const auditFile = async (file: AuditedFile, text: string): Promise<void> => {
    if (file.kind === 'dockerfile') {
      const loaded = await loadDockerfile({ path: file.path, text, lookup })
      if (accept(file.path, loaded)) await runDockerfile(loaded.ctx, loaded.units)
    } else if (file.kind === 'workflow') {
      const loaded = await loadWorkflow(file.path, text, lookup)
      if (loaded.problems.length > 0 || loaded.ctx == null) {
        errors.push({ path: file.path, message: `malformed workflow: ${loaded.problems.join('; ')}` })
        return
      }
      for (const f of FAMILIES) f.workflow?.(loaded.ctx, report)
      await runUnits(loaded.units)
    } else {
      const parsed = await parseShell(text)
      const lines = createLineIndex(text)
      if (parsed.problems.length > 0) {
        errors.push({ path: file.path, message: `malformed shell script: ${parsed.problems.map(p => `line ${lines.position(p.offset).line}: ${p.message}`).join('; ')}` })
        return
      }
      const dir = posix.dirname(file.path)
      await runUnits([{ path: file.path, context: 'script', source: text, lines, commands: parsed.commands, env: new Set(), runFlags: [], dir: dir === '.' ? '' : dir, lookup }])
    }
  }

  // Templates first, so the Dockerfiles they include are audited with the template's ARGs.
  const includedPaths = new Set<string>()
  for (const file of found.files.filter(f => f.kind === 'template')) {
    const text = await read(file.path)
    if (text == null) continue
    let template: LoadedDockerfile | undefined
    await guard(file.path, async () => {
      const loaded = await loadDockerfile({ path: file.path, text, template: true, lookup })
      if (!accept(file.path, loaded)) return
      await runDockerfile(loaded.ctx, loaded.units)
      template = loaded
    })
    if (template == null || !followTemplates) continue
    const stages = new Set<string>()
    for (const inc of template.includes) {
      for (const target of includeTargets(file.path, inc.image, inc.line)) {
        const incText = await read(target)
        if (incText == null) continue
        includedPaths.add(target)
        if (!files.has(target)) files.set(target, { path: target, kind: 'dockerfile' })
        const globals = template.ctx.globals
        await guard(target, async () => {
          const loaded = await loadDockerfile({ path: target, text: incText, inherited: globals, stages, via: file.path, lookup })
          if (accept(target, loaded)) await runDockerfile(loaded.ctx, loaded.units)
        })
      }
      if (inc.stage != null) stages.add(inc.stage.toLowerCase())
    }
  }

  for (const file of found.files) {
    if (file.kind === 'template' || includedPaths.has(file.path)) continue
    const text = await read(file.path)
    if (text == null) continue
    await guard(file.path, async () => { await auditFile(file, text) })
  }

  const scope = createScope({ files: [...files.values()], text: path => texts.get(path) ?? lookup(path), ...(opts.recipe != null ? { recipe: opts.recipe } : {}) })
  errors.push(...scope.errors.map(e => ({ ...e, kind: 'config' as const })))
  // Files a template includes are read through it; their findings are left out here.
  let excluded = 0
  for (const [key, f] of findings) {
    if (excludedPath(f.path) || exclude.rules.some(r => ruleMatches(r, f.ruleId))) { findings.delete(key); excluded++ }
  }
  const outside = new Map<Finding, string>()
  for (const f of findings.values()) {
    const why = scope.judge(f)
    if (why != null) outside.set(f, why)
  }
  const order = (f: Finding): number => SEVERITIES.indexOf(f.severity)
  // Within a severity, what a release build reads before development-only files.
  const impact = (f: Finding): number => {
    let n = ruleById(f.ruleId)?.impact ?? 0
    // An image named by a build argument is chosen by whoever builds (a recipe passes a digest).
    if (f.ruleId === BASE_IMAGE_UNPINNED && f.text.includes('$')) n -= 1
    if (DEV_ONLY.test(f.path)) n -= 10
    // What no release build is affected by comes after everything that one is.
    if (outside.has(f)) n -= 100
    return n
  }
  const all = [...findings.values()].sort((a, b) => order(a) - order(b) || impact(b) - impact(a) || compareText(a.path, b.path) || a.line - b.line || (a.column ?? 0) - (b.column ?? 0) || compareText(a.ruleId, b.ruleId))
  let waivers: Suppression[] = []
  const config = await readRepoFile(abs, SUPPRESS_FILE).catch(() => undefined)
  if (config != null) {
    const parsed = parseSuppressions(config)
    waivers = parsed.rules
    errors.push(...parsed.errors)
  }
  const { kept, suppressed } = applySuppressions(all, waivers, path => texts.get(path)?.split('\n'), errors)
  const sorted: Finding[] = []
  const skipped: AuditReport['skipped'] = []
  for (const f of kept) {
    const why = outside.get(f)
    if (why == null) sorted.push(f)
    else if (opts.all === true) sorted.push({ ...f, outside: why })
    else skipped.push({ ...f, outside: why })
  }
  const summary = { critical: 0, high: 0, medium: 0, low: 0 }
  for (const f of sorted) summary[f.severity]++
  log.debug({ root: abs, files: files.size, findings: sorted.length, errors: errors.length }, 'audit finished')
  return {
    root: abs,
    files: [...files.values()].sort((a, b) => compareText(a.path, b.path)),
    findings: sorted,
    suppressed,
    skipped,
    errors: errors.sort((a, b) => compareText(a.path, b.path)),
    summary,
    ...(opts.exclude != null && opts.exclude.length > 0 ? { excluded } : {})
  }
}

