import { commandText, placeAt } from '../context.js'
import type { DockerfileContext, RuleFamily, ShellUnit } from '../context.js'
import { commandName } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'

export const SOURCE_DATE_EPOCH_MISSING = 'NR040-source-date-epoch-missing'
export const REWRITE_TIMESTAMP_MISSING = 'NR041-rewrite-timestamp-missing'
export const BUILD_CACHE_SHARED = 'NR042-build-cache-shared'

/** `docker build`, `docker buildx build`, `docker image build`, `docker builder build`. */
export function isDockerBuild (cmd: SimpleCommand): boolean {
  if (commandName(cmd) !== 'docker') return false
  const subs = cmd.words.slice(1).filter(w => !w.text.startsWith('-')).map(w => w.text)
  return subs[0] === 'build' || (['buildx', 'image', 'builder'].includes(subs[0] ?? '') && subs[1] === 'build')
}

/** Whether an assignment or export earlier in the unit sets SOURCE_DATE_EPOCH. */
function setsEpoch (cmd: SimpleCommand): boolean {
  if (cmd.assignments.some(a => a.raw.startsWith('SOURCE_DATE_EPOCH='))) return true
  const name = commandName(cmd)
  return (name === 'export' || name === 'declare' || name === 'readonly') && cmd.words.some(w => /^SOURCE_DATE_EPOCH(=|$)/.test(w.text))
}

function checkShell (unit: ShellUnit, report: Report): void {
  let epoch = unit.env.has('SOURCE_DATE_EPOCH')
  for (const cmd of unit.commands) {
    if (setsEpoch(cmd) && !isDockerBuild(cmd)) epoch = true
    if (!isDockerBuild(cmd)) continue
    const at = (cmd.words[0] as Word).start
    const text = commandText(cmd)
    const passes = cmd.assignments.some(a => a.raw.startsWith('SOURCE_DATE_EPOCH=')) || cmd.words.some(w => w.raw.includes('SOURCE_DATE_EPOCH'))
    if (!epoch && !passes) report(SOURCE_DATE_EPOCH_MISSING, placeAt(unit, at, text, 'the image is built without SOURCE_DATE_EPOCH, so BuildKit stamps the current time into the image config and history'))
    if (!cmd.words.some(w => w.text.includes('rewrite-timestamp=true'))) report(REWRITE_TIMESTAMP_MISSING, placeAt(unit, at, text, 'the build exports layers without rewrite-timestamp=true, so file times inside layers keep the time of the build'))
    const cache = cmd.words.find(w => w.text === '--cache-from' || w.text.startsWith('--cache-from='))
    if (cache != null) report(BUILD_CACHE_SHARED, placeAt(unit, cache.start, text, 'the build reuses a cache from earlier builds, so its layers may come from another build\'s inputs'))
  }
}

function checkDockerfile (ctx: DockerfileContext, report: Report): void {
  for (const ins of ctx.dockerfile.getInstructions()) {
    if (ins.getKeyword() !== 'RUN') continue
    const flags = (ins as unknown as { getFlags: () => Array<{ getName: () => string, getValue: () => string | null, getRange: () => { start: { line: number, character: number } } }> }).getFlags()
    for (const f of flags) {
      if (f.getName() !== 'mount' || !/(^|,)type=cache(,|$)/.test(f.getValue() ?? '')) continue
      const r = f.getRange()
      const offset = ctx.lines.lineStart(r.start.line + 1) + r.start.character
      report(BUILD_CACHE_SHARED, placeAt(ctx, offset, `--mount=${f.getValue() ?? ''}`, 'a cache mount carries files from earlier builds into this step'))
    }
  }
}

export const buildkit: RuleFamily = {
  rules: [{
    id: SOURCE_DATE_EPOCH_MISSING,
    severity: 'medium',
    title: 'Image built without SOURCE_DATE_EPOCH',
    why: 'Without SOURCE_DATE_EPOCH BuildKit writes the current time into the image config (created) and history, so two builds of the same source get different digests.',
    fix: 'export SOURCE_DATE_EPOCH=$(git log -1 --pretty=%ct) before building, or pass --build-arg SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH (BuildKit 0.11 or later).'
  }, {
    id: REWRITE_TIMESTAMP_MISSING,
    severity: 'medium',
    title: 'BuildKit export without rewrite-timestamp=true',
    why: 'SOURCE_DATE_EPOCH alone clamps metadata but not the modification times of files created by RUN steps; only rewrite-timestamp=true rewrites them in the exported layers.',
    fix: 'Export with --output type=oci,dest=image.tar,rewrite-timestamp=true (or type=image,...,rewrite-timestamp=true; BuildKit 0.13 or later).'
  }, {
    id: BUILD_CACHE_SHARED,
    severity: 'medium',
    title: 'Build cache shared across builds',
    why: 'Layers restored from a cache (--cache-from, cache-from: type=gha, RUN --mount=type=cache) were produced by an earlier build from earlier inputs; a release built on them does not prove what its own inputs produce.',
    fix: 'Build releases with --no-cache and without --cache-from; keep cache mounts out of steps whose output lands in the image, or clear them per build.'
  }],
  shell: checkShell,
  dockerfile: checkDockerfile
}
