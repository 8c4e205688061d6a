import { join } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { defaultDataDir } from '../../node/config/index.js'
import { CONTROL_SOCKET, controlRequest } from '../../node/daemon/control.js'
import { formatJobs } from '../jobs-format.js'
import { DEFAULT_RECENT_JOBS } from '../../node/scheduler/jobs-view.js'
import { fetchJobsFromNode } from '../../node/client/jobs.js'
import { parseTargetKey } from '../../protocol/target.js'
import { UsageError } from '../errors.js'

function count (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 1000) throw new InvalidArgumentError('must be a whole number up to 1000')
  return Number(value)
}

export function register (program: Command): void {
  const jobs = program.command('jobs')
    .description('Show a node\'s build queue: builds running (step, elapsed time, log), queued, and recent results; `jobs retry` requeues one')
    // Not required by commander: it would be required of `jobs retry` too.
    .option('--node <url>', 'the node\'s HTTP feed (join --http); required')
    .option('--recent <n>', 'finished jobs to list', count, DEFAULT_RECENT_JOBS)
    .option('--json', 'print the view as JSON')
    .action(async (opts: { node?: string, recent: number, json?: boolean }) => {
      if (opts.node == null) throw new UsageError('--node', 'required: the node\'s HTTP feed URL')
      const view = await fetchJobsFromNode(opts.node, { recent: opts.recent })
      process.stdout.write(opts.json === true ? JSON.stringify(view, null, 2) + '\n' : formatJobs(view))
    })

  jobs.command('retry')
    .description('Requeue a target on the node running on this machine: after fixing a broken host, or to skip a retry\'s back-off')
    .argument('<target>', 'the target key as `jobs` prints it: <repository>@<commit>#<variant>@<platform>')
    .option('--data-dir <dir>', 'the node\'s data directory (env NEKO_DATA_DIR; default $XDG_DATA_HOME/neko-rebuilder)')
    .action(async (target: string, opts: { dataDir?: string }) => {
      try {
        parseTargetKey(target)
      } catch (err) {
        throw new UsageError('target', (err as Error).message)
      }
      const env = process.env.NEKO_DATA_DIR
      const dataDir = opts.dataDir ?? (env != null && env !== '' ? env : defaultDataDir(process.env))
      const job = await controlRequest(join(dataDir, CONTROL_SOCKET), { op: 'retry', target })
      process.stdout.write(`requeued ${job.id}\n`)
    })
}
