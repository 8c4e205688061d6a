import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Command } from 'commander'
import { loadRecipe, REPOSITORY_RECIPE_FILE } from '../../node/rebuilder/index.js'
import { UsageError } from '../errors.js'
import { auditRepository, configErrors, FAIL_ON, fileErrors, FORMATS, formatReport, gateExitCode, skippedLine, summaryCounts } from '../../audit/index.js'
import type { FailOn, Format } from '../../audit/index.js'
import { cliLogger } from '../logger.js'

interface AuditFlags {
  format: string
  failOn: string
  output?: string
  include?: string[]
  exclude?: string[]
  followTemplates: boolean
  recipe?: string
  all?: boolean
}

export function register (program: Command): void {
  program.command('audit')
    .description('Find causes of non-reproducible image builds in a repository: Dockerfiles (and Dockerfile.tmpl includes), shell build scripts and GitHub workflows')
    .argument('[path]', 'repository to audit', '.')
    .option('--format <format>', `report format: ${FORMATS.join('|')}`, 'table')
    .option('--fail-on <severity>', `exit 1 when a finding at or above this severity exists: ${FAIL_ON.join('|')}`, 'none')
    .option('-o, --output <file>', 'write the report to a file instead of standard output')
    .option('--include <paths...>', 'audit only these repository-relative paths or glob patterns')
    .option('--exclude <rules-or-paths...>', 'leave out these rules (NR050) and repository-relative paths or glob patterns')
    .option('--no-follow-templates', 'do not follow FROM ./dir/ includes of Dockerfile.tmpl files')
    .option('--recipe <name|file>', `how release builds are made (a built-in name such as neko, or a recipe file; default: the repository's ${REPOSITORY_RECIPE_FILE}, if any): findings in files or stages no release build reads are skipped`)
    .option('--all', 'also show the findings no release build is affected by, after the others of their severity')
    .action(async (path: string, flags: AuditFlags) => {
      if (!(FORMATS as readonly string[]).includes(flags.format)) throw new UsageError('--format', `must be one of ${FORMATS.join(', ')}, not ${flags.format}`)
      if (!(FAIL_ON as readonly string[]).includes(flags.failOn)) throw new UsageError('--fail-on', `must be one of ${FAIL_ON.join(', ')}, not ${flags.failOn}`)
      const recipe = flags.recipe != null
        ? await loadRecipe(flags.recipe)
        : existsSync(join(path, REPOSITORY_RECIPE_FILE)) ? await loadRecipe(undefined, path) : undefined
      const report = await auditRepository(path, {
        followTemplates: flags.followTemplates,
        ...(flags.include != null ? { include: flags.include } : {}),
        ...(flags.exclude != null ? { exclude: flags.exclude } : {}),
        ...(recipe != null ? { recipe } : {}),
        all: flags.all === true
      }, { logger: cliLogger() })
      const color = flags.format === 'table' && flags.output == null && process.stdout.isTTY && process.env.NO_COLOR == null
      const text = formatReport(report, flags.format as Format, { color })
      if (flags.output != null) {
        await writeFile(flags.output, text)
        process.stderr.write(`audit: ${summaryCounts(report)}; report written to ${flags.output}\n`)
        if (report.skipped.length > 0) process.stderr.write(`audit: ${skippedLine(report.skipped.length)}\n`)
      } else {
        process.stdout.write(text)
      }
      if (flags.format !== 'table') {
        const failed = fileErrors(report).length
        const config = configErrors(report).length
        if (failed > 0) process.stderr.write(`audit: ${failed} file(s) could not be audited; see "errors" in the report\n`)
        if (config > 0) process.stderr.write(`audit: ${config} config error(s) (suppressions, --include/--exclude, recipe); see "errors" with kind "config" in the report\n`)
      }
      process.exitCode = gateExitCode(report, flags.failOn as FailOn)
    })
}
