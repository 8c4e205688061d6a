import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('status').description('(not available yet)').action(() => {
    throw new Error('status is not available yet')
  })
}
