import { chmod, rm } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { NekoError } from '../../protocol/errors.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import type { Scheduler } from '../scheduler/index.js'
import type { Job } from '../store/types.js'

/**
 * The node's local control socket, `<data-dir>/control.sock`: what an operator does to a
 * running node (`jobs retry`). A Unix socket readable by the node's user only, so the public
 * HTTP feed stays read-only and needs no credentials.
 */
export const CONTROL_SOCKET = 'control.sock'

/** One request line; far more than a target key needs. */
const MAX_REQUEST_BYTES = 16 * 1024
const MAX_REPLY_BYTES = 64 * 1024
/** Unix socket paths are limited (108 bytes on Linux, with the terminator). */
const MAX_SOCKET_PATH = 107

export type ControlRequest = { op: 'retry', target: string }
export type ControlReply = { ok: true, job: Job } | { ok: false, error: { name: string, message: string } }

/** The control socket cannot be reached, or answered an error. */
export class NodeControlError extends NekoError {
  override name = 'NodeControlError'
  override readonly code = 'ERR_NODE_CONTROL'
}

export interface ControlServerComponents {
  scheduler: Pick<Scheduler, 'retry'>
  logger?: ComponentLogger
}

export interface ControlServerInit {
  path: string
}

export interface ControlServer {
  start: () => Promise<void>
  stop: () => Promise<void>
}

export function createControlServer (components: ControlServerComponents, init: ControlServerInit): ControlServer {
  const log = componentLog(components.logger, 'control')
  let server: Server | undefined
  const sockets = new Set<Socket>()

  async function answer (line: string): Promise<ControlReply> {
    let req: Partial<ControlRequest>
    try {
      req = JSON.parse(line) as Partial<ControlRequest>
    } catch {
      return { ok: false, error: { name: 'ValidationError', message: 'the request is not JSON' } }
    }
    if (req.op !== 'retry' || typeof req.target !== 'string' || req.target.length > 4096) {
      return { ok: false, error: { name: 'ValidationError', message: 'expected {"op":"retry","target":"<target key>"}' } }
    }
    try {
      return { ok: true, job: await components.scheduler.retry(req.target) }
    } catch (err) {
      return { ok: false, error: { name: (err as Error).name ?? 'Error', message: (err as Error).message ?? String(err) } }
    }
  }

  function serve (socket: Socket): void {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    socket.setTimeout(10_000, () => socket.destroy())
    let buffered = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      buffered += chunk
      if (buffered.length > MAX_REQUEST_BYTES) { socket.end(JSON.stringify({ ok: false, error: { name: 'LimitError', message: `a request is at most ${MAX_REQUEST_BYTES} bytes` } }) + '\n'); return }
      const end = buffered.indexOf('\n')
      if (end === -1) return
      socket.pause()
      answer(buffered.slice(0, end)).then(reply => { socket.end(JSON.stringify(reply) + '\n') }, () => socket.destroy())
    })
  }

  return {
    async start () {
      if (Buffer.byteLength(init.path) > MAX_SOCKET_PATH) {
        log.warn({ path: init.path }, 'data dir path too long for a control socket: `jobs retry` cannot reach this node')
        return
      }
      // A socket left by a killed node: the store lock already proved no other node runs here.
      await rm(init.path, { force: true })
      const s = createServer(serve)
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(init.path, () => { s.off('error', reject); resolve() })
      })
      await chmod(init.path, 0o600)
      server = s
    },
    async stop () {
      const s = server
      server = undefined
      if (s == null) return
      for (const socket of sockets) socket.destroy()
      await new Promise<void>(resolve => s.close(() => { resolve() }))
      await rm(init.path, { force: true })
    }
  }
}

/** Sends one request to a running node's control socket and returns its answer. */
export async function controlRequest (path: string, req: ControlRequest, opts: { timeoutMs?: number } = {}): Promise<Job> {
  const reply = await new Promise<ControlReply>((resolve, reject) => {
    const socket = connect(path)
    let text = ''
    socket.setEncoding('utf8')
    socket.setTimeout(opts.timeoutMs ?? 30_000, () => { socket.destroy(new NodeControlError(`the node at ${path} did not answer`)) })
    socket.on('connect', () => socket.write(JSON.stringify(req) + '\n'))
    socket.on('data', (chunk: string) => {
      text += chunk
      if (text.length > MAX_REPLY_BYTES) socket.destroy(new NodeControlError(`the node's answer exceeds ${MAX_REPLY_BYTES} bytes`))
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof NodeControlError) { reject(err); return }
      reject(new NodeControlError(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? `no node runs with this data dir (no control socket at ${path}); start it with \`neko-rebuilder join\`, or pass the node's --data-dir`
        : `cannot reach the node's control socket ${path}: ${err.code ?? err.message}`))
    })
    socket.on('end', () => {
      try {
        resolve(JSON.parse(text) as ControlReply)
      } catch {
        reject(new NodeControlError(`the node at ${path} answered no JSON`))
      }
    })
  })
  if (!reply.ok) throw new NodeControlError(`${reply.error.name}: ${reply.error.message}`)
  return reply.job
}
