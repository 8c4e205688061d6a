import type { Command } from 'commander'
import { readPublicKey } from '../../node/identity-files.js'
import { peerIdOf } from '../../node/p2p/identity.js'
import { publicKeyFromPem } from '../../protocol/keys.js'
import { cliLogger } from '../logger.js'

export function register (program: Command): void {
  program.command('peer-id')
    .description('Print the libp2p peer id (for /p2p/ in bootstrap addresses) and the key id of an identity')
    .argument('<dir|pem>', 'identity directory (public.pem, else private.pem) or a PEM file')
    .option('--json', 'print {peerId, keyId, file} as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const key = await readPublicKey(path, { logger: cliLogger() })
      const peerId = peerIdOf(publicKeyFromPem(key.publicKeyPem))
      if (opts.json === true) process.stdout.write(JSON.stringify({ peerId, keyId: key.keyId, file: key.file }) + '\n')
      else process.stdout.write(`${peerId}\n`)
    })
}
