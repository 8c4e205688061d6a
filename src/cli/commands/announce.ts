import type { Command } from 'commander'
import { multiaddr } from '@multiformats/multiaddr'
import { UsageError } from '../errors.js'
import { prepareAnnouncement } from '../../node/daemon/announce.js'
import { publishOnce } from '../publish-once.js'
import { readIdentity } from '../../node/identity-files.js'
import { loadPolicyFile } from '../../node/daemon/policy.js'
import { AnnouncerNotTrustedError } from '../../node/daemon/errors.js'
import { envelopeId } from '../../protocol/dsse.js'
import { signAnnouncement } from '../../protocol/messages.js'
import { EXIT } from '../exit-codes.js'
import { cliLogger } from '../logger.js'
import { repositoryArgument } from '../repository.js'

interface AnnounceOptions {
  repo: string
  tag: string
  commit?: string
  recipe?: string
  key: string
  to?: string[]
  variant?: string[]
  platform?: string[]
  print?: boolean
  timeout?: string
  policy?: string
}

/** Why `addr` cannot name a running node (a multiaddr with /p2p/<peer id>), or undefined. */
function peerAddressProblem (addr: string): string | undefined {
  let ma
  try {
    ma = multiaddr(addr)
  } catch {
    return 'not a multiaddr (expected /ip4/HOST/tcp/PORT/p2p/PEER_ID, as `join` prints under "listening")'
  }
  if (!ma.getComponents().some(c => c.name === 'p2p')) return 'names no peer: add /p2p/PEER_ID (as `join` prints under "listening")'
  return undefined
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map(s => s.trim()).filter(s => s !== '')]

export function register (program: Command): void {
  program.command('announce')
    .description('Sign the announcement of a release (tag → commit, recipe, targets) and publish it through a running node, or print it')
    .requiredOption('--repo <url>', 'git URL or local path of the repository')
    .requiredOption('--tag <tag>', 'release tag')
    .option('--commit <sha>', 'commit the tag must point to')
    .option('--recipe <name|file>', 'built-in recipe (neko) or recipe file; default: the repository\'s own, else its Dockerfile')
    .requiredOption('--key <dir>', 'announcer identity directory (private.pem)')
    .option('--to <multiaddr>', 'running node to publish through (with /p2p/<peer id>), repeatable', collect)
    .option('--variant <name>', 'only this variant, repeatable', collect)
    .option('--platform <os/arch>', 'only this platform, repeatable', collect)
    .option('--print', 'write the signed envelope to stdout (the default without --to)')
    .option('--timeout <seconds>', 'how long to wait for a peer to take it', '20')
    .option('--policy <file>', 'the receiving nodes\' trust policy: refuse, before publishing, unless it lists this key as an announcer')
    .action(async (opts: AnnounceOptions, cmd: Command) => {
      // Before any work: a bad address should not cost a signature and a clone.
      for (const addr of opts.to ?? []) {
        const problem = peerAddressProblem(addr)
        if (problem != null) cmd.error(`neko-rebuilder: --to ${addr}: ${problem}`, { exitCode: EXIT.USAGE })
      }
      const timeoutS = Number(opts.timeout)
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout', 'must be a positive number of seconds')
      const identity = await readIdentity(opts.key, { logger: cliLogger() })
      if (opts.policy != null) {
        const policy = await loadPolicyFile(opts.policy)
        if (!policy.announcerKeys.has(identity.keyId)) throw new AnnouncerNotTrustedError(identity.keyId, opts.policy)
      }
      const announcement = await prepareAnnouncement({
        repository: repositoryArgument(opts.repo),
        tag: opts.tag,
        ...(opts.commit != null ? { commit: opts.commit } : {}),
        ...(opts.recipe != null ? { recipe: opts.recipe } : {}),
        ...(opts.variant != null ? { variants: opts.variant } : {}),
        ...(opts.platform != null ? { platforms: opts.platform } : {})
      })
      const envelope = signAnnouncement(announcement, identity)
      const json = JSON.stringify(envelope)
      const printed = opts.print === true || opts.to == null || opts.to.length === 0
      if (printed) process.stdout.write(json + '\n')
      if (opts.to != null && opts.to.length > 0) {
        const sent = await publishOnce(Buffer.from(json, 'utf8'), { to: opts.to, timeoutMs: timeoutS * 1000 }, { logger: cliLogger() })
        // Receivers judge it against their own policy after this returns: say only what is known.
        const trust = opts.policy != null ? `an announcer of ${opts.policy}` : 'accepted only by nodes whose policy lists this key as an announcer (check first with --policy FILE)'
        // The result goes to stdout, apart from log records, unless stdout carries the envelope.
        const out = printed ? process.stderr : process.stdout
        await cliLogger().flush()
        out.write(`sent ${announcement.repository} ${announcement.tag} (commit ${announcement.commit}, ${announcement.targets.length} target${announcement.targets.length === 1 ? '' : 's'}, recipe ${announcement.recipe.name}) as ${envelopeId(envelope)} to ${sent.recipients} peer(s); key ${identity.keyId.slice(0, 12)}: ${trust}\n`)
      }
    })
}
