import type { Command } from 'commander'
import { UsageError } from '../errors.js'
import { runDevnet } from '../../node/devnet/index.js'
import { createLogger } from '../../node/logger.js'
import { EXIT } from '../exit-codes.js'
import { surviveClosedStreamWrites } from '../signals.js'

interface DevnetOptions {
  nodes: string
  oneEngine?: boolean
  json?: boolean
  keep?: boolean
  timeout: string
  nondeterministicWith?: string
}

export function register (program: Command): void {
  program.command('devnet')
    .description('Run a local network of rebuilder nodes on 127.0.0.1, each on a Docker engine of its own, that rebuild a fixture release and print their consensus')
    .option('--nodes <n>', 'number of nodes, all trusted builders (k = 2; k = 1 with --one-engine)', '3')
    .option('--one-engine', 'build every node on the running engine instead of starting a dockerd per node (one engine is one vote: k = 1; no root needed)')
    .option('--json', 'print the result as JSON')
    .option('--keep', 'keep the temporary directory (stores, keys, fixture project) and print its path')
    .option('--timeout <seconds>', 'give up waiting for the consensus after this long', '600')
    .option('--nondeterministic-with <busybox>', 'rebuild a fixture that writes the date and random bytes into its image, run by this static busybox binary (the network must find it unreproducible)')
    .action(async (opts: DevnetOptions) => {
      const nodes = Number(opts.nodes)
      if (!Number.isSafeInteger(nodes) || nodes < 1 || nodes > 16) throw new UsageError('--nodes', 'must be an integer from 1 to 16')
      const timeout = Number(opts.timeout)
      if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError('--timeout', 'must be a positive number of seconds')
      const progress = opts.json === true ? undefined : (line: string): void => { process.stderr.write(`devnet: ${line}\n`) }
      // The run prints its own progress; node logs only on request (NEKO_LOG_LEVEL=info).
      const logger = createLogger({ defaultLevel: 'warn' })
      const unguard = surviveClosedStreamWrites(logger.forComponent('process'))
      // Ctrl-C still stops the nodes, the engines and removes their bridges.
      const stop = new AbortController()
      const onSignal = (): void => { stop.abort(new Error('stopped by a signal')) }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      const result = await runDevnet({
        nodes,
        oneEngine: opts.oneEngine === true,
        signal: stop.signal,
        keep: opts.keep === true,
        timeoutMs: timeout * 1000,
        ...(progress != null ? { onProgress: progress } : {}),
        ...(opts.nondeterministicWith != null ? { nondeterministicWith: opts.nondeterministicWith } : {})
      }, { logger }).finally(() => {
        unguard()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      })
      if (opts.json === true) {
        process.stdout.write(JSON.stringify({
          reproducible: result.reproducible,
          settled: result.settled,
          repository: result.repository,
          tag: result.tag,
          commit: result.commit,
          threshold: result.threshold,
          engines: result.engines,
          seconds: result.seconds,
          ...(result.dir != null ? { dir: result.dir } : {}),
          targets: result.verdicts.map(v => ({
            target: v.key,
            status: v.status,
            digest: v.consensusDigest ?? v.leadingDigest ?? null,
            agreeing: v.agreeing.map(a => ({ name: a.name, operator: a.operator, keyId: a.keyId })),
            sameEngine: v.sameEngine.map(x => ({ name: x.name, keyId: x.keyId, countedAs: x.countedAs })),
            dissenting: v.dissenting.length,
            failed: v.failed.map(f => ({ name: f.name, failure: f.failure.class, message: f.failure.message }))
          })),
          nodes: result.nodes
        }, null, 2) + '\n')
      } else {
        const rows = [['TARGET', 'STATUS', 'AGREEING', 'DIGEST']]
        for (const v of result.verdicts) {
          rows.push([`${v.target.variant} ${v.target.platform}`, v.status, `${v.agreeing.length}/${v.threshold}`, v.consensusDigest ?? v.leadingDigest ?? '-'])
        }
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map(r => r[i]!.length)))
        const lines = rows.map(r => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd())
        process.stdout.write([
          `release ${result.tag} (commit ${result.commit.slice(0, 12)}), ${result.nodes.length} nodes on ${result.engines === 'one' ? 'one engine' : `${result.nodes.length} engines`}, k = ${result.threshold}`,
          ...lines,
          ...result.nodes.map((n, i) => `node ${i + 1} ${n.peerId} (engine ${n.engineId ?? '?'}): ${n.verdicts.map(v => v.status).join(', ')}`),
          result.reproducible ? `reproducible: every node agrees on every target (${result.seconds} s)` : `not reproducible on every node (${result.seconds} s)`,
          ...(result.dir != null ? [`kept: ${result.dir} (query it: neko-rebuilder status TAG --data-dir ${result.dir}/node-1 --policy ${result.dir}/trust.json)`] : []),
          ''
        ].join('\n'))
      }
      process.exitCode = result.reproducible ? EXIT.OK : result.settled ? EXIT.NOT_REPRODUCIBLE : EXIT.PENDING
      // Anything a library left open must not keep a finished run alive.
      setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref()
    })
}
