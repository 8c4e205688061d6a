import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('rebuild').description('(not available yet)').action(() => {
    throw new Error('rebuild is not available yet')
  })
}
