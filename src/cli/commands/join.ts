import type { Command } from 'commander'
import { resolveConfig, type NodeSettings } from '../../node/config/index.js'
import { onShutdownSignals, surviveClosedStreamWrites } from '../signals.js'
import { startNode } from '../../node/daemon/run.js'
import { cliLogger } from '../logger.js'
import { startAttesting } from '../join-attest.js'
import { formatReachability } from '../../node/p2p/nat.js'

interface JoinOptions {
  config?: string
  dataDir?: string
  listen?: string[]
  bootstrap?: string[]
  policy?: string
  key?: string
  http?: string
  concurrency?: string
  mdns?: boolean
  buildAll?: boolean
  upnp?: boolean
  relays?: string
  relayServer?: string
  relayMaxReservations?: string
  relayCircuitMib?: string
  relayCircuitSeconds?: string
  witnessRound?: string
  watch?: string
  announceKey?: string
  watchInterval?: string
  recipe?: string
  buildTimeout?: string
  maxReleaseAge?: string
  keepManifests?: string
  keepManifestsDays?: string
  keepManifestsMib?: string
  keepOutputs?: string
  keepOutputsDays?: string
  keepOutputsMib?: string
  json?: boolean
  attest?: string[]
  attestAuth?: string
  attestEvery?: string
  witnessUrl?: string[]
  witnessLog?: string[]
  networkLog?: string
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map(s => s.trim()).filter(s => s !== '')]

export function register (program: Command): void {
  program.command('join')
    .description('Run a rebuilder node: join the network, rebuild what trusted announcers announce, sign and gossip the results')
    .option('--config <file>', 'JSON config file (env NEKO_CONFIG)')
    .option('--data-dir <dir>', 'data directory (env NEKO_DATA_DIR; default $XDG_DATA_HOME/neko-rebuilder)')
    .option('--listen <multiaddr>', 'listen address, repeatable (env NEKO_LISTEN; default /ip4/0.0.0.0/tcp/4088)', collect)
    .option('--bootstrap <multiaddr>', 'peer to dial at start, repeatable (env NEKO_BOOTSTRAP, comma-separated)', collect)
    .option('--policy <file>', 'trust policy (env NEKO_POLICY; default <data-dir>/policy.json, else trust nobody)')
    .option('--key <dir>', 'node identity directory (env NEKO_KEY_DIR; default <data-dir>/identity, created on first run)')
    .option('--http <addr>', 'serve the HTTP feed on HOST:PORT (env NEKO_HTTP)')
    .option('--concurrency <n>', 'builds at once (env NEKO_CONCURRENCY; default from cores and memory: one per 4 cores and 8 GiB, at least 1)')
    .option('--build-all', 'build every announced target this node can, not only its share of the release (env NEKO_BUILD_ALL=1)')
    .option('--no-mdns', 'do not discover peers on the local network (env NEKO_MDNS=0)')
    .option('--no-upnp', 'do not ask the router for a port mapping by UPnP/NAT-PMP (env NEKO_UPNP=0)')
    .option('--relays <n|auto>', 'relay slots to hold so that peers reach this node behind a NAT; auto: 2 when the host has no public address (env NEKO_RELAYS; default auto)')
    .option('--relay-server <auto|on|off>', 'relay for peers behind NATs; auto: when one of the host\'s own addresses is public (env NEKO_RELAY_SERVER; default auto)')
    .option('--relay-max-reservations <n>', 'peers this node relays for at once (env NEKO_RELAY_MAX_RESERVATIONS; default 32)')
    .option('--relay-circuit-mib <MiB>', 'bytes one relayed connection may carry before it is dropped (env NEKO_RELAY_CIRCUIT_MIB; default 8)')
    .option('--relay-circuit-seconds <s>', 'how long one relayed connection may last (env NEKO_RELAY_CIRCUIT_SECONDS; default 180)')
    .option('--build-timeout <seconds>', 'limit of one rebuild (env NEKO_BUILD_TIMEOUT; default 10800)')
    .option('--max-release-age <days>', 'rebuild only releases announced in the last DAYS days, 0 for any age (env NEKO_MAX_RELEASE_AGE; default 30)')
    .option('--watch <url>', 'poll this repository\'s tags and announce new ones (env NEKO_WATCH)')
    .option('--announce-key <dir>', 'identity that signs --watch announcements (env NEKO_ANNOUNCE_KEY)')
    .option('--watch-interval <seconds>', 'tag poll interval (env NEKO_WATCH_INTERVAL; default 300)')
    .option('--recipe <name|file>', 'recipe for --watch announcements (env NEKO_RECIPE; default the repository\'s own)')
    .option('--attest <variant=repo>', 'opt in: attach VSAs and claims of decided releases to this published image repository, signed with the node key (repeatable)', (v: string, p: string[] = []) => [...p, v])
    .option('--attest-auth <file>', 'Docker config.json with push credentials for --attest (env NEKO_REGISTRY_AUTH)')
    .option('--attest-every <seconds>', 'how often every release is looked at again for --attest (default 600)')
    .option('--keep-manifests <n>', 'file manifests of recent rebuilds kept for dissenting peers (env NEKO_KEEP_MANIFESTS; default 100)')
    .option('--keep-manifests-days <days>', 'drop kept file manifests older than this (env NEKO_KEEP_MANIFESTS_DAYS; default 30)')
    .option('--keep-manifests-mib <MiB>', 'disk the kept file manifests may take (env NEKO_KEEP_MANIFESTS_MIB; default 1024)')
    .option('--keep-outputs <n>', 'OCI outputs of recent rebuilds kept to explain differing files, 0 for none (env NEKO_KEEP_OUTPUTS; default 3)')
    .option('--keep-outputs-days <days>', 'drop kept outputs older than this (env NEKO_KEEP_OUTPUTS_DAYS; default 7)')
    .option('--keep-outputs-mib <MiB>', 'disk the kept outputs may take (env NEKO_KEEP_OUTPUTS_MIB; default 8192)')
    .option('--witness-round <s>', 'time alone earns one push of this node\'s log checkpoint to its sampled witnesses per this many seconds; new log entries earn pushes sooner (env NEKO_WITNESS_ROUND_SECONDS; default 300)')
    .option('--witness-url <url=vkey>', 'push this node\'s log checkpoints to a C2SP tlog-witness: its submission prefix = its cosignature/v1 verifier key (repeatable; env NEKO_WITNESS_URLS)', (v: string, p: string[] = []) => [...p, v])
    .option('--witness-log <vkey>', 'also witness this log over HTTP (POST /tlog/add-checkpoint): its Ed25519 note verifier key (repeatable; env NEKO_WITNESS_LOGS)', (v: string, p: string[] = []) => [...p, v])
    .option('--network-log <origin>', 'run a network log under this origin (e.g. example.org/neko-rebuilder/network-log): the node log heads it sees and each verdict, a checkpoint at most every 5 minutes, served under /network-log/ and pushed to --witness-url witnesses (env NEKO_NETWORK_LOG)')
    .option('--json', 'print the node summary as one JSON line')
    .action(async (opts: JoinOptions, cmd: Command) => {
      // Commander sets mdns to true by default; only an explicit --no-mdns counts as a flag.
      const mdnsFromCli = cmd.getOptionValueSource('mdns') === 'cli'
      const upnpFromCli = cmd.getOptionValueSource('upnp') === 'cli'
      const flags: NodeSettings & { config?: string } = {
        ...(opts.config != null ? { config: opts.config } : {}),
        ...(opts.dataDir != null ? { dataDir: opts.dataDir } : {}),
        ...(opts.listen != null ? { listen: opts.listen } : {}),
        ...(opts.bootstrap != null ? { bootstrap: opts.bootstrap } : {}),
        ...(opts.policy != null ? { policy: opts.policy } : {}),
        ...(opts.key != null ? { keyDir: opts.key } : {}),
        ...(opts.http != null ? { http: opts.http } : {}),
        ...(opts.concurrency != null ? { concurrency: opts.concurrency } : {}),
        ...(mdnsFromCli ? { mdns: opts.mdns !== false } : {}),
        ...(opts.buildAll === true ? { buildAll: true } : {}),
        ...(upnpFromCli ? { upnp: opts.upnp !== false } : {}),
        ...(opts.relays != null ? { relays: opts.relays } : {}),
        ...(opts.relayServer != null ? { relayServer: opts.relayServer } : {}),
        ...(opts.relayMaxReservations != null ? { relayMaxReservations: opts.relayMaxReservations } : {}),
        ...(opts.relayCircuitMib != null ? { relayCircuitMiB: opts.relayCircuitMib } : {}),
        ...(opts.relayCircuitSeconds != null ? { relayCircuitSeconds: opts.relayCircuitSeconds } : {}),
        ...(opts.buildTimeout != null ? { buildTimeoutSeconds: opts.buildTimeout } : {}),
        ...(opts.maxReleaseAge != null ? { maxReleaseAgeDays: opts.maxReleaseAge } : {}),
        ...(opts.watch != null ? { watch: opts.watch } : {}),
        ...(opts.announceKey != null ? { announceKey: opts.announceKey } : {}),
        ...(opts.watchInterval != null ? { watchIntervalSeconds: opts.watchInterval } : {}),
        ...(opts.recipe != null ? { recipe: opts.recipe } : {}),
        ...(opts.keepManifests != null ? { keepManifests: opts.keepManifests } : {}),
        ...(opts.keepManifestsDays != null ? { keepManifestsDays: opts.keepManifestsDays } : {}),
        ...(opts.keepManifestsMib != null ? { keepManifestsMiB: opts.keepManifestsMib } : {}),
        ...(opts.keepOutputs != null ? { keepOutputs: opts.keepOutputs } : {}),
        ...(opts.keepOutputsDays != null ? { keepOutputsDays: opts.keepOutputsDays } : {}),
        ...(opts.keepOutputsMib != null ? { keepOutputsMiB: opts.keepOutputsMib } : {}),
        ...(opts.witnessRound != null ? { witnessRoundSeconds: opts.witnessRound } : {}),
        ...(opts.witnessUrl != null ? { witnessUrls: opts.witnessUrl } : {}),
        ...(opts.witnessLog != null ? { witnessLogs: opts.witnessLog } : {}),
        ...(opts.networkLog != null ? { networkLog: opts.networkLog } : {})
      }
      const config = resolveConfig({ flags, env: process.env })
      const logger = cliLogger()
      surviveClosedStreamWrites(logger.forComponent('process'))
      const node = await startNode({ logger }, config)
      const log = node.logger.forComponent('join')
      const { daemon } = node
      const attester = opts.attest != null
        ? await startAttesting(node, config, opts).catch(async (err: unknown) => { await node.stop(); throw err })
        : undefined
      const caps = daemon.capabilities()
      const reach = daemon.stats().reachability
      const summary = {
        peerId: daemon.peerId,
        keyId: daemon.keyId,
        dataDir: config.dataDir,
        listen: daemon.multiaddrs(),
        builds: caps?.builds === true ? caps.platforms : [],
        nvidia: caps?.nvidia ?? false,
        http: daemon.httpUrl() ?? null,
        policy: config.policyFile ?? null,
        watch: config.watch?.url ?? null,
        // At start AutoNAT has not answered yet: later changes are logged ("reachability changed").
        reachability: { mode: reach.mode, relays: reach.relays, relaySlots: config.nat.relays, upnp: config.nat.upnp, relayServer: config.nat.relayServer }
      }
      const { relaySlots, upnp, relayServer } = summary.reachability
      if (opts.json === true) {
        process.stdout.write(JSON.stringify(summary) + '\n')
      } else {
        const builds = summary.builds.length === 0 ? 'nothing (observer)' : summary.builds.map(p => `${p.platform}${p.emulated ? ' (emulated)' : ''}`).join(', ')
        process.stdout.write([
          `peer id:   ${summary.peerId}`,
          `key id:    ${summary.keyId}`,
          `data dir:  ${summary.dataDir}`,
          ...summary.listen.map((a, i) => `${i === 0 ? 'listening: ' : '           '}${a}`),
          `builds:    ${builds}${summary.nvidia ? ', NVIDIA GPU' : ''}`,
          ...(summary.http != null ? [`http:      ${summary.http}`] : []),
          `policy:    ${summary.policy ?? 'built-in (trusts nobody)'}`,
          `reachable: ${formatReachability(reach)} (relay slots ${relaySlots}, UPnP ${upnp ? 'on' : 'off'}, relay server ${relayServer})`,
          ...(summary.watch != null ? [`watching:  ${summary.watch}`] : []),
          ''
        ].join('\n'))
      }
      await new Promise<void>(resolve => {
        const off = onShutdownSignals(async () => {
          await attester?.stop()
          await node.stop()
          off()
          resolve()
        }, log)
      })
      log.info('bye')
      // Anything a library left open must not keep a stopped node alive.
      setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref()
    })
}
