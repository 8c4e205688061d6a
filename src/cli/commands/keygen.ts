import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('keygen').description('(not available yet)').action(() => {
    throw new Error('keygen is not available yet')
  })
}
