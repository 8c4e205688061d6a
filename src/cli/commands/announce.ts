import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('announce').description('(not available yet)').action(() => {
    throw new Error('announce is not available yet')
  })
}
