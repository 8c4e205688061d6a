import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { readFile, writeFile } from 'node:fs/promises'
import { applyFixes, DEFAULT_MAX_PATHS, diffOciArchives, VERDICT_TEXT, type FileChange, type ImageDiff } from '../../node/compare/index.js'
import { EXIT } from '../exit-codes.js'

function pathCount (value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('must be a whole number of paths (0 or more)')
  return Number(value)
}

/** Paths shown per cause and layer in the text output (`--json` lists every one). */
export const TEXT_PATHS_PER_CAUSE = 3

function describe (c: FileChange, withDiff: boolean): string {
  const parts: string[] = []
  for (const k of c.kinds) {
    if (k === 'content' && c.a?.sha256 != null && c.b?.sha256 != null) parts.push(`content ${c.a.sha256.slice(0, 12)} -> ${c.b.sha256.slice(0, 12)} (${c.a.size} -> ${c.b.size} bytes)`)
    else if (k === 'mtime' && c.a != null && c.b != null) parts.push(`mtime ${new Date(c.a.mtime * 1000).toISOString()} -> ${new Date(c.b.mtime * 1000).toISOString()}`)
    else if (k === 'mode' && c.a != null && c.b != null) parts.push(`mode ${c.a.mode.toString(8)} -> ${c.b.mode.toString(8)}`)
    else if (k === 'owner' && c.a != null && c.b != null) parts.push(`owner ${c.a.uid}:${c.a.gid} -> ${c.b.uid}:${c.b.gid}`)
    else if (k === 'order' && c.a != null && c.b != null) parts.push(`order ${c.a.order} -> ${c.b.order}`)
    else parts.push(k)
  }
  const cause = c.cause != null ? `  [${c.cause.id}]` : ''
  const lines = [`    ${c.path || '.'}: ${parts.join(', ')}${cause}`]
  if (c.detail != null) lines.push(`      ${c.detail}`)
  if (withDiff && c.diff != null) lines.push(...c.diff.split('\n').map(l => `      ${l}`))
  return lines.join('\n')
}

export function formatImageDiff (d: ImageDiff): string {
  const mark = (equal: boolean): string => equal ? 'same' : 'DIFFERENT'
  const out: string[] = []
  // Different commits or clocks explain everything below: say so first.
  for (const line of d.origins?.differences ?? []) out.push(`NOTE      ${line}`)
  out.push(`index     ${mark(d.index.equal)}  a ${d.index.a}  b ${d.index.b}`)
  for (const m of d.manifests) out.push(`manifest  ${mark(m.equal)}  ${m.platform}  a ${m.a ?? '(none)'}  b ${m.b ?? '(none)'}`)
  if (d.config != null) {
    out.push(`config    ${mark(d.config.equal)}  a ${d.config.a}  b ${d.config.b}`)
    if (d.config.fields.length > 0) out.push(`  fields: ${d.config.fields.join(', ')}`)
  }
  for (const l of d.layers) {
    out.push(`layer ${l.index}  ${l.verdict}  ${l.step ?? '(step unknown)'}`)
    out.push(`  a ${l.a?.diffId ?? '(none)'}  b ${l.b?.diffId ?? '(none)'}`)
    for (const p of l.packages ?? []) out.push(`    package ${p.name} ${p.a ?? '(absent)'} → ${p.b ?? '(absent)'}`)
    // Grouped by cause, most paths first: a few paths each, the first with its diff.
    const ids = Object.entries(l.causeCounts).sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
    for (const [id, count] of ids) {
      const listed = l.changes.filter(c => (c.cause?.id ?? 'unknown') === id)
      out.push(`  ${id}  ${count} path(s)`)
      listed.slice(0, TEXT_PATHS_PER_CAUSE).forEach((c, i) => out.push(describe(c, i === 0)))
      const more = count - Math.min(listed.length, TEXT_PATHS_PER_CAUSE)
      const unlisted = l.omittedCauses?.[id] ?? 0
      if (more > 0) out.push(`    ... and ${more} more${unlisted > 0 ? ` (${more - unlisted} in --json; ${unlisted} past --max-paths, counted only)` : ' (all in --json)'}`)
    }
  }
  if (d.causes.length > 0) {
    out.push(`causes    ${d.paths.explained} of ${d.paths.total} differing path(s) have a known cause`)
    for (const g of d.causes) {
      out.push(`  ${String(g.count).padStart(5)}  ${g.cause.id}: ${g.cause.summary}  (layer ${g.layers.join(', ')})`)
      out.push(`         e.g. ${g.paths.join(', ')}`)
      out.push(`         fix: ${g.cause.fix}`)
      if (g.cause.auditRule != null) out.push(`         audit: ${g.cause.auditRule}`)
    }
  }
  out.push(`verdict   ${d.identical ? 'identical' : `${d.verdict}: ${VERDICT_TEXT[d.verdict]}`}`)
  out.push(`summary   ${d.summary}`)
  return `${out.join('\n')}\n`
}

export function register (program: Command): void {
  program.command('diff')
    .description('Compare two OCI image tarballs: index, manifests, config fields and the files of every differing layer, with the step that made it and, per file, the cause and the fix')
    .argument('<a>', 'first OCI tarball (docker buildx --output type=oci)')
    .argument('<b>', 'second OCI tarball')
    .option('--json', 'print the comparison as JSON: every differing path with its cause, up to --max-paths')
    .option('--max-paths <n>', `differing paths listed at most, over all layers; past it paths are still recognised and counted per cause (default ${DEFAULT_MAX_PATHS})`, pathCount)
    .option('--fix <dockerfile>', 'write a copy of this Dockerfile with the removals of the leftover causes applied to the RUN steps that made the differing layers')
    .option('--fix-out <path>', 'where --fix writes the copy (default: <dockerfile>.fixed)')
    .action(async (a: string, b: string, flags: { json?: boolean, maxPaths?: number, fix?: string, fixOut?: string }) => {
      const d = await diffOciArchives(a, b, { maxPaths: flags.maxPaths ?? DEFAULT_MAX_PATHS })
      process.stdout.write(flags.json === true ? `${JSON.stringify(d, null, 2)}\n` : formatImageDiff(d))
      if (flags.fix != null) {
        const fixed = applyFixes(await readFile(flags.fix, 'utf8'), d)
        const out = flags.fixOut ?? `${flags.fix}.fixed`
        await writeFile(out, fixed.dockerfile)
        const say = (s: string): boolean => process.stderr.write(`${s}\n`)
        for (const f of fixed.applied) say(`fixed     layer ${f.layer}: line ${f.line} += ${f.added}  (${f.causes.join(', ')})`)
        for (const m of fixed.manual) say(`by hand   layer ${m.layer}: ${m.cause}`)
        say(`wrote     ${out}`)
      }
      process.exitCode = d.identical ? EXIT.OK : EXIT.NOT_REPRODUCIBLE
    })
}
