import type { Command } from 'commander'

export function register (program: Command): void {
  program.command('audit').description('(not available yet)').action(() => {
    throw new Error('audit is not available yet')
  })
}
