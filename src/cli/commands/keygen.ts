import type { Command } from 'commander'
import { writeIdentity } from '../../node/identity-files.js'
import { peerIdOf } from '../../node/p2p/identity.js'
import { generateIdentity } from '../../protocol/keys.js'
import { cliLogger } from '../logger.js'

interface KeygenOptions {
  out: string
  json?: boolean
}

export function register (program: Command): void {
  program.command('keygen')
    .description('Create a new Ed25519 identity: DIR/private.pem (mode 0600) and DIR/public.pem; never overwrites one')
    .requiredOption('--out <dir>', 'directory to write the identity to (created if missing)')
    .option('--json', 'print {keyId, peerId, privateKeyFile, publicKeyFile, publicKeyPem} as JSON')
    .action(async (opts: KeygenOptions) => {
      const identity = generateIdentity()
      const files = await writeIdentity(opts.out, identity, { logger: cliLogger() })
      const peerId = peerIdOf(identity.publicKey)
      if (opts.json === true) {
        process.stdout.write(JSON.stringify({ keyId: identity.keyId, peerId, ...files, publicKeyPem: identity.publicKeyPem }) + '\n')
      } else {
        process.stdout.write(`key id:      ${identity.keyId}\npeer id:     ${peerId}\nprivate key: ${files.privateKeyFile}\npublic key:  ${files.publicKeyFile}\n`)
      }
    })
}
