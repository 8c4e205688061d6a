import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('devnet').description('(not available yet)').action(() => {
    throw new Error('devnet is not available yet')
  })
}
