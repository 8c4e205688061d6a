import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { signClaim } from '../../protocol/messages.js'
import { readIdentity } from '../../node/identity-files.js'
import { makeDir } from '../../node/make-dir.js'
import { createRebuilder, TargetError, type BuildProgress, type RebuildOutcome } from '../../node/rebuilder/index.js'
import { nativePlatform } from '../../tool.js'
import { InterruptedError } from '../errors.js'
import { EXIT } from '../exit-codes.js'
import { cliLogger } from '../logger.js'
import { repositoryArgument } from '../repository.js'

interface RebuildFlags {
  repo: string
  ref: string
  commit?: string
  recipe?: string
  variant?: string
  platform?: string
  key?: string
  out?: string
  timeout?: number
  workDir?: string
  json?: boolean
}

function seconds (value: string): number {
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
  return n
}

/**
 * One line on a terminal, rewritten in place: the step and the time so far. The clock
 * ticks every second, also through a long step that prints nothing.
 */
function progressLine (stream: NodeJS.WriteStream): { update: (p: BuildProgress) => void, stop: () => void } {
  const started = Date.now()
  let last: BuildProgress | undefined
  const draw = (): void => {
    if (last == null) return
    const secs = ((Date.now() - started) / 1000).toFixed(0).padStart(5)
    const what = last.phase === 'build' && last.step != null ? `#${last.stepIndex ?? '?'} ${last.step}` : last.step ?? last.phase
    const line = `[${secs}s] ${last.variant}: ${what}`.replace(/\s+/g, ' ')
    const width = (stream.columns ?? 100) - 1
    stream.write(`\r\x1b[K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`)
  }
  const timer = setInterval(draw, 1000)
  timer.unref()
  return {
    update: p => { last = p; draw() },
    stop: () => { clearInterval(timer) }
  }
}

function printOutcome (outcome: RebuildOutcome, claimFile: string | undefined): void {
  const { claim } = outcome
  const t = claim.target
  const out: string[] = [`target      ${t.repository} ${t.tag ?? ''}${t.tag != null ? ' ' : ''}${t.commit} ${t.variant} ${t.platform}`]
  out.push(`recipe      ${claim.recipe.name} ${claim.recipe.digest}`)
  out.push(`epoch       ${claim.sourceDateEpoch}`)
  out.push(`environment docker ${claim.environment.engine.version}, buildx ${claim.environment.buildx}, buildkit ${claim.environment.buildkit}, ${claim.environment.arch}${claim.environment.emulated ? ' (emulated target)' : ''}`)
  if (claim.result != null) {
    out.push(`index       ${claim.result.indexDigest}`)
    out.push(`manifest    ${claim.result.manifestDigest}`)
    out.push(`config      ${claim.result.configDigest}`)
    claim.result.diffIds.forEach((d, i) => out.push(`layer ${String(i).padEnd(5)} ${d}  ${claim.result?.layerSteps?.[i] ?? ''}`))
  } else if (claim.failure != null) {
    out.push(`FAILED      ${claim.failure.class}: ${claim.failure.message}`)
    if (claim.failure.step != null) out.push(`step        ${claim.failure.step}`)
  }
  if (outcome.ociPath != null) out.push(`oci         ${outcome.ociPath}`)
  if (outcome.logPath != null) out.push(`log         ${outcome.logPath}`)
  if (claimFile != null) out.push(`claim       ${claimFile}`)
  process.stdout.write(`${out.join('\n')}\n`)
}

export function register (program: Command): void {
  program.command('rebuild')
    .description('Rebuild one variant and platform of a release through the local Docker engine and print (and optionally sign) the digests or the failure')
    .requiredOption('--repo <url|path>', 'git URL or local path of the repository')
    .requiredOption('--ref <tag|commit>', 'tag or commit to rebuild')
    .option('--commit <sha>', 'refuse unless the ref points to this commit')
    .option('--recipe <neko|file>', 'built-in recipe name or recipe file (default: the repository\'s neko-rebuilder.json, else its root Dockerfile)')
    .option('--variant <name>', 'recipe variant (default: the only one)')
    .option('--platform <os/arch>', 'target platform', nativePlatform())
    .option('--key <dir>', 'sign the claim with the identity in this directory and write it as a DSSE JSON file')
    .option('--out <dir>', 'keep the OCI tarball, the build log and the signed claim here')
    .option('--timeout <seconds>', 'give up (failure class timeout) after this long', seconds)
    .option('--work-dir <dir>', 'scratch space for checkouts and tarballs', process.env.NEKO_WORK_DIR ?? join(tmpdir(), 'neko-rebuilder'))
    .option('--json', 'print the outcome (claim, paths) as JSON')
    .action(async (flags: RebuildFlags) => {
      // Load the key first: a missing key should not cost a build.
      const logger = cliLogger()
      const identity = flags.key != null ? await readIdentity(resolve(flags.key), { logger }) : undefined
      const outDir = flags.out != null ? resolve(flags.out) : undefined
      if (outDir != null) await makeDir(outDir)
      const rebuilder = createRebuilder({ logger }, {
        workDir: resolve(flags.workDir ?? join(tmpdir(), 'neko-rebuilder')),
        ...(flags.timeout != null ? { timeoutMs: Math.round(flags.timeout * 1000) } : {})
      })
      const tty = process.stderr.isTTY && flags.json !== true
      const line = tty ? progressLine(process.stderr) : undefined
      const controller = new AbortController()
      const onSigint = (): void => controller.abort(new InterruptedError())
      process.once('SIGINT', onSigint)
      let outcome: RebuildOutcome
      try {
        outcome = await rebuilder.rebuild({
          repository: repositoryArgument(flags.repo),
          ref: flags.ref,
          platform: flags.platform ?? nativePlatform(),
          ...(flags.commit != null ? { expectedCommit: flags.commit } : {}),
          ...(flags.recipe != null ? { recipe: flags.recipe } : {}),
          ...(flags.variant != null ? { variant: flags.variant } : {}),
          ...(outDir != null ? { outDir } : {})
        }, { signal: controller.signal, ...(line != null ? { onProgress: line.update } : {}) })
      } catch (err) {
        if (err instanceof TargetError) {
          process.stderr.write(`neko-rebuilder: ${err.name}: ${err.message}\n`)
          process.exitCode = EXIT.USAGE
          return
        }
        throw err
      } finally {
        process.removeListener('SIGINT', onSigint)
        line?.stop()
        if (tty) process.stderr.write('\r\x1b[K')
      }
      // Stopped before there was a commit to build: the error, in one line; nothing to sign.
      if (outcome.notStarted != null) throw outcome.notStarted
      let claimFile: string | undefined
      if (identity != null) {
        const envelope = signClaim(outcome.claim, identity)
        const t = outcome.claim.target
        claimFile = join(outDir ?? process.cwd(), `claim-${t.variant}-${t.platform.replace(/\//g, '-')}-${t.commit.slice(0, 12)}.dsse.json`)
        // One compact line: claim files concatenated are a bundle that `verify` reads.
        await writeFile(claimFile, `${JSON.stringify(envelope)}\n`)
      }
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify({ ...outcome, ...(claimFile != null ? { claimFile } : {}) }, null, 2)}\n`)
      } else {
        printOutcome(outcome, claimFile)
      }
      process.exitCode = outcome.claim.result != null ? EXIT.OK : EXIT.BUILD_FAILED
    })
}
