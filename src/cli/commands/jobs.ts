import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { formatJobs } from '../../node/daemon/jobs-format.js'
import { DEFAULT_RECENT_JOBS } from '../../node/daemon/jobs.js'
import { fetchJobsFromNode } from '../../node/daemon/jobs-remote.js'

function count (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) > 1000) throw new InvalidArgumentError('must be a whole number up to 1000')
  return Number(value)
}

export function register (program: Command): void {
  program.command('jobs')
    .description('Show a node\'s build queue: builds running (step, elapsed time, log), queued, and recent results')
    .requiredOption('--node <url>', 'the node\'s HTTP feed (join --http)')
    .option('--recent <n>', 'finished jobs to list', count, DEFAULT_RECENT_JOBS)
    .option('--json', 'print the view as JSON')
    .action(async (opts: { node: string, recent: number, json?: boolean }) => {
      const view = await fetchJobsFromNode(opts.node, { recent: opts.recent })
      process.stdout.write(opts.json === true ? JSON.stringify(view, null, 2) + '\n' : formatJobs(view))
    })
}
