#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander'
import { NekoError } from '../protocol/errors.js'
import { describeOsError } from '../node/os-errors.js'
import { ConfigError } from '../node/config/errors.js'
import { InterruptedError, UsageError } from './errors.js'
import { EXIT } from './exit-codes.js'
import { TOOL_NAME, TOOL_VERSION } from '../tool.js'
import { LOG_LEVELS, logLevelFromArgv } from './log-level.js'
import { flushCliLogs } from './logger.js'

// Checked before the command is looked up, so that a bad level is a usage error for every
// command; the command's logger (cli/logger.ts) reads it from NEKO_LOG_LEVEL, where the flag
// wins over the environment.
const logLevel = logLevelFromArgv(process.argv)
if (typeof logLevel === 'object') {
  process.stderr.write(`neko-rebuilder: ${logLevel.error}\n`)
  process.exit(EXIT.USAGE)
}
if (logLevel !== undefined) process.env.NEKO_LOG_LEVEL = logLevel

const program = new Command(TOOL_NAME)
  .description('Rebuild container image releases on a peer-to-peer network and decide, by signed quorum, whether they are reproducible')
  .version(TOOL_VERSION)
  .addOption(new Option('--log-level <level>', 'log records at this level and above, on stderr (env NEKO_LOG_LEVEL; default info)').choices(LOG_LEVELS))
  .configureHelp({ showGlobalOptions: true })
  .exitOverride()

// Each command pulls in its own heavy dependencies (libp2p, dockerode, ajv schemas), so only
// the command being run is loaded; help and unknown commands load them all.
const COMMANDS: Record<string, () => Promise<{ register: (program: Command) => void }>> = {
  keygen: async () => await import('./commands/keygen.js'),
  'peer-id': async () => await import('./commands/peer-id.js'),
  policy: async () => await import('./commands/policy.js'),
  verify: async () => await import('./commands/verify.js'),
  rebuild: async () => await import('./commands/rebuild.js'),
  diff: async () => await import('./commands/diff.js'),
  join: async () => await import('./commands/join.js'),
  announce: async () => await import('./commands/announce.js'),
  devnet: async () => await import('./commands/devnet.js'),
  status: async () => await import('./commands/status.js'),
  jobs: async () => await import('./commands/jobs.js'),
  audit: async () => await import('./commands/audit.js'),
  attest: async () => await import('./commands/attest.js'),
  'verify-image': async () => await import('./commands/verify-image.js')
}
// The command name: the first word that is not an option (nor --log-level's value).
const requested = process.argv.slice(2).find((a, i, all) => !a.startsWith('-') && all[i - 1] !== '--log-level')
const names = requested != null && Object.hasOwn(COMMANDS, requested) ? [requested] : Object.keys(COMMANDS)
for (const name of names) {
  const load = COMMANDS[name]
  if (load != null) (await load()).register(program)
}

// Ctrl-C: one line and 130, unless the command handles it (join stops cleanly, rebuild
// cancels its build and ends here through an InterruptedError).
process.on('SIGINT', () => {
  if (process.listenerCount('SIGINT') > 1) return
  process.stderr.write('neko-rebuilder: interrupted\n')
  process.exit(EXIT.INTERRUPTED)
})

try {
  await program.parseAsync(process.argv)
} catch (err) {
  // The error line last, after the records that led to it.
  await flushCliLogs().catch(() => {})
  if (err instanceof CommanderError) {
    // --help and --version exit through here with code 0.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
  } else if (err instanceof InterruptedError) {
    process.stderr.write('neko-rebuilder: interrupted\n')
    process.exitCode = EXIT.INTERRUPTED
  } else if (err instanceof UsageError || (err instanceof ConfigError && err.problems.every(p => p.source === 'flag'))) {
    process.stderr.write(`neko-rebuilder: ${err.name}: ${err.message}\n`)
    process.exitCode = EXIT.USAGE
  } else if (err instanceof NekoError) {
    process.stderr.write(`neko-rebuilder: ${err.name}: ${err.message}\n`)
    process.exitCode = EXIT.ERROR
  } else {
    // An operating system's refusal (permissions, a port in use) is one line; only a
    // genuine bug shows its stack.
    const line = describeOsError(err) ?? describeOsError((err as { cause?: unknown } | undefined)?.cause)
    process.stderr.write(`neko-rebuilder: ${line ?? (err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`)
    process.exitCode = EXIT.ERROR
  }
}
