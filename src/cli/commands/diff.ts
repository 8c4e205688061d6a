import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('diff').description('(not available yet)').action(() => {
    throw new Error('diff is not available yet')
  })
}
