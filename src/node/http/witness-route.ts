/**
 * `POST /tlog/add-checkpoint` (C2SP tlog-witness): the only route that reads a request body,
 * bounded by its declared length and by the bytes that actually arrive.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ADD_CHECKPOINT_LIMITS } from '../../protocol/tlog/witness-request.js'
import type { HttpWitness } from '../tlog/http-witness.js'

export const ADD_CHECKPOINT_ROUTE = '/tlog/add-checkpoint'

function reply (res: ServerResponse, status: number, contentType: string, body: string, reason?: string): void {
  res.statusCode = status
  res.setHeader('Content-Type', contentType)
  res.setHeader('Cache-Control', 'no-store')
  // A 409's body is the size alone: the reason travels beside it.
  if (reason !== undefined) res.setHeader('Neko-Reason', reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 300))
  res.end(body)
}

/** Reads the body (at most the add-checkpoint limit) and answers; never throws. */
export async function serveAddCheckpoint (req: IncomingMessage, res: ServerResponse, witness: HttpWitness): Promise<void> {
  const max = ADD_CHECKPOINT_LIMITS.maxBodyBytes
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (declared > max) {
    req.resume()
    reply(res, 413, 'text/plain; charset=utf-8', `an add-checkpoint body is at most ${max} bytes\n`)
    return
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).byteLength
      if (size > max) {
        reply(res, 413, 'text/plain; charset=utf-8', `an add-checkpoint body is at most ${max} bytes\n`)
        req.destroy()
        return
      }
      chunks.push(chunk as Buffer)
    }
  } catch {
    res.destroy()
    return
  }
  const a = await witness.addCheckpoint(Buffer.concat(chunks), req.socket.remoteAddress ?? 'unknown')
  reply(res, a.status, a.contentType, a.body, a.reason)
}
