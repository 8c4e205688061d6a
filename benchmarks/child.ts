import { fork, type ChildProcess } from 'node:child_process'

/** A benchmark's child process and the typed messages it sends back. */
export interface BenchChild<From extends { type: string }, To> {
  proc: ChildProcess
  send: (m: To) => void
  /** The next message of `type`, whether it came before or after the call. */
  next: <T extends From['type']>(type: T) => Promise<Extract<From, { type: T }>>
}

/** Forks `file` (under tsx) with `args`; its messages wait for whoever asks for their type. */
export function forkChild<From extends { type: string }, To = unknown> (file: string, args: string[], execArgv: string[] = []): BenchChild<From, To> {
  const proc = fork(file, args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting: Array<{ type: string, resolve: (m: From) => void }> = []
  const early: From[] = []
  proc.on('message', (m: From) => {
    const i = waiting.findIndex(w => w.type === m.type)
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(m)
    else early.push(m)
  })
  return {
    proc,
    send: (m) => { proc.send(m as object) },
    next: async (type) => await new Promise(resolve => {
      const i = early.findIndex(m => m.type === type)
      if (i >= 0) resolve(early.splice(i, 1)[0] as never)
      else waiting.push({ type, resolve: resolve as (m: From) => void })
    })
  }
}
