import { fork, type ChildProcess } from 'node:child_process'

/** A benchmark's child process and the typed messages it sends back. */
export interface BenchChild<From extends { type: string }, To> {
  proc: ChildProcess
  /** Throws once the child has exited. */
  send: (m: To) => void
  /** The next message of `type`, whether it came before or after the call; rejects once the child has exited without sending it. */
  next: <T extends From['type']>(type: T) => Promise<Extract<From, { type: T }>>
  /** Resolves when the child has exited (at once if it has). */
  exited: () => Promise<void>
  /** Rejects when the child exits, however: raced against a wait that asks nothing of the child, it ends the wait if the child dies. */
  gone: Promise<never>
}

/** Forks `file` (under tsx) with `args`; its messages wait for whoever asks for their type. */
export function forkChild<From extends { type: string }, To = unknown> (file: string, args: string[], execArgv: string[] = []): BenchChild<From, To> {
  const proc = fork(file, args, { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting: Array<{ type: string, resolve: (m: From) => void, reject: (err: Error) => void }> = []
  const early: From[] = []
  let exit: Error | undefined
  let leave: (err: Error) => void = () => {}
  const gone = new Promise<never>((_resolve, reject) => { leave = reject })
  // Nobody may be racing it when it rejects (as after a clean stop).
  gone.catch(() => {})
  const exitedAt = new Promise<void>(resolve => { proc.once('exit', () => { resolve() }) })
  proc.on('message', (m: From) => {
    const i = waiting.findIndex(w => w.type === m.type)
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(m)
    else early.push(m)
  })
  // A crashed child would leave whoever waits on it waiting for ever: fail them instead, loudly.
  // Only once its channel has closed too: 'exit' may come before the last messages are read.
  let exitedWith: string | undefined
  let disconnected = false
  const fail = (): void => {
    if (exitedWith === undefined || !disconnected || exit !== undefined) return
    exit = new Error(`benchmark child ${String(proc.pid)} (${args.join(' ')}) exited with ${exitedWith}`)
    for (const w of waiting.splice(0)) w.reject(new Error(`${exit.message} before sending '${w.type}'`))
    leave(exit)
  }
  proc.once('exit', (code, signal) => { exitedWith = signal ?? `code ${String(code)}`; fail() })
  proc.once('disconnect', () => { disconnected = true; fail() })
  return {
    proc,
    send: (m) => {
      if (exit !== undefined || !proc.connected) throw exit ?? new Error(`benchmark child ${String(proc.pid)} (${args.join(' ')}) has closed its channel`)
      // A channel closing meanwhile shows as the child's exit, to whoever waits on it.
      proc.send(m as object, () => {})
    },
    next: async (type) => await new Promise((resolve, reject) => {
      const i = early.findIndex(m => m.type === type)
      if (i >= 0) resolve(early.splice(i, 1)[0] as never)
      else if (exit !== undefined) reject(new Error(`${exit.message} before sending '${type}'`))
      else waiting.push({ type, resolve: resolve as (m: From) => void, reject })
    }),
    exited: async () => { await exitedAt },
    gone
  }
}
