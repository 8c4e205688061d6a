/**
 * A real node killed with SIGKILL at one of the two gaps between a stored message and the
 * work derived from it; test/node/crash.test.ts restarts it and checks the work is done.
 *
 *   announcement DIR CONFIG: kills itself as soon as an announcement is stored (durably),
 *     before the build queue has read it.
 *   divergence DIR CONFIG: builds, and kills itself once the divergence follower's cursor is past its
 *     own claim that a trusted builder contradicts, before the other builder's file manifest
 *     is fetched: the comparison is pending, nothing is reported.
 *
 * CONFIG is a JSON file: { builders: [pem…], announcer: pem, self: index, envelope?, bootstrap? }.
 */
import { readFile } from 'node:fs/promises'
import { identityFromPrivatePem } from '../../src/protocol/keys.js'
import { policyFor, startDaemon } from './helpers.js'

const [mode, dir, configPath] = process.argv.slice(2) as [string, string, string]
const config = JSON.parse(await readFile(configPath, 'utf8')) as { builders: string[], announcer: string, self: number, envelope?: string, bootstrap?: string[] }
const builders = config.builders.map(pem => identityFromPrivatePem(pem))
const policy = policyFor(builders, [identityFromPrivatePem(config.announcer)])
const identity = builders[config.self]!

const kill = (): never => {
  process.kill(process.pid, 'SIGKILL')
  throw new Error('not reached')
}

if (mode === 'announcement') {
  const daemon = await startDaemon({ dir, identity, policy, build: true })
  // Listeners run in the order they were added: the node's own (the followers') first, which
  // only schedules a read of the store; this one kills the process before that read is done.
  daemon.onStored(m => { if (m.kind === 'announcement') kill() })
  await daemon.announce(config.envelope ?? '')
} else if (mode === 'divergence') {
  const daemon = await startDaemon({ dir, identity, policy, build: true, manifests: true, bootstrap: config.bootstrap ?? [] })
  // The divergence service asks the p2p node for the dissenting builder's manifest: the comparison is
  // pending by then. Wait until the follower's cursor is durable past the claims, then die.
  daemon.p2p.fileManifest = async () => {
    for (;;) {
      const cursor = await daemon.store.getState<number>('follower-cursor:divergence') ?? 0
      if (cursor >= daemon.store.lastCursor()) {
        process.stdout.write(`pending ${cursor}\n`)
        kill()
      }
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }
}
