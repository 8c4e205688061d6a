import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('verify').description('(not available yet)').action(() => {
    throw new Error('verify is not available yet')
  })
}
