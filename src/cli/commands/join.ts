import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('join').description('(not available yet)').action(() => {
    throw new Error('join is not available yet')
  })
}
