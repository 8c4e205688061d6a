#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { NekoError } from '../protocol/errors.js'
import { EXIT } from './exit-codes.js'
import { TOOL_NAME, TOOL_VERSION } from '../tool.js'

const program = new Command(TOOL_NAME)
  .description('Rebuild container image releases on a peer-to-peer network and decide, by signed quorum, whether they are reproducible')
  .version(TOOL_VERSION)
  .exitOverride()

// Each command pulls in its own heavy dependencies (libp2p, dockerode, ajv schemas), so only
// the command being run is loaded; help and unknown commands load them all.
const COMMANDS: Record<string, () => Promise<{ register: (program: Command) => void }>> = {
  keygen: async () => await import('./commands/keygen.js'),
  verify: async () => await import('./commands/verify.js'),
  rebuild: async () => await import('./commands/rebuild.js'),
  diff: async () => await import('./commands/diff.js'),
  join: async () => await import('./commands/join.js'),
  announce: async () => await import('./commands/announce.js'),
  devnet: async () => await import('./commands/devnet.js'),
  status: async () => await import('./commands/status.js'),
  audit: async () => await import('./commands/audit.js'),
  attest: async () => await import('./commands/attest.js'),
  'verify-image': async () => await import('./commands/verify-image.js')
}
const requested = process.argv[2]
const names = requested != null && Object.hasOwn(COMMANDS, requested) ? [requested] : Object.keys(COMMANDS)
for (const name of names) {
  const load = COMMANDS[name]
  if (load != null) (await load()).register(program)
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version exit through here with code 0.
    process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE
  } else if (err instanceof NekoError) {
    process.stderr.write(`neko-rebuilder: ${err.name}: ${err.message}\n`)
    process.exitCode = EXIT.ERROR
  } else {
    process.stderr.write(`neko-rebuilder: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = EXIT.ERROR
  }
}
