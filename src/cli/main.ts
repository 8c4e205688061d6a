#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import { NekoError } from '../protocol/errors.js'
import { EXIT } from './exit-codes.js'
import { register as keygen } from './commands/keygen.js'
import { register as verify } from './commands/verify.js'
import { register as rebuild } from './commands/rebuild.js'
import { register as diff } from './commands/diff.js'
import { register as join } from './commands/join.js'
import { register as announce } from './commands/announce.js'
import { register as devnet } from './commands/devnet.js'
import { register as status } from './commands/status.js'
import { register as audit } from './commands/audit.js'
import { TOOL_VERSION } from './version.js'

const program = new Command('neko-rebuilder')
  .description('Rebuild container image releases on a peer-to-peer network and decide, by signed quorum, whether they are reproducible')
  .version(TOOL_VERSION)
  .exitOverride()

for (const register of [keygen, verify, rebuild, diff, join, announce, devnet, status, audit]) register(program)

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
