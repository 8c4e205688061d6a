import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Tamper {
  /** Change the response: return new headers and body (for GET; HEAD has no body). */
  (req: { method: string, path: string }, res: { status: number, headers: Record<string, string>, body: Buffer }): { status: number, headers: Record<string, string>, body: Buffer }
}

export interface TamperingProxy {
  url: string
  host: string
  stop: () => Promise<void>
}

/**
 * A loopback reverse proxy in front of a real registry that can rewrite any response: how
 * the tests stand in for a compromised mirror or a registry that lies about a digest.
 */
export async function startTamperingProxy (target: string, tamper: Tamper, opts: { chunked?: boolean } = {}): Promise<TamperingProxy> {
  const server: Server = createServer((req, res) => {
    const forward = async (): Promise<void> => {
      const headers: Record<string, string> = {}
      for (const [k, v] of Object.entries(req.headers as IncomingHttpHeaders)) {
        if (typeof v === 'string' && k !== 'host' && k !== 'connection') headers[k] = v
      }
      const method = req.method ?? 'GET'
      const upstream = await fetch(`${target}${req.url ?? '/'}`, { method, headers, redirect: 'manual' })
      const body = Buffer.from(await upstream.arrayBuffer())
      const upHeaders: Record<string, string> = {}
      upstream.headers.forEach((v, k) => {
        if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'content-encoding') upHeaders[k] = v
      })
      const out = tamper({ method, path: req.url ?? '/' }, { status: upstream.status, headers: upHeaders, body })
      if (method === 'HEAD') {
        res.writeHead(out.status, out.headers).end()
      } else if (opts.chunked === true) {
        // No Content-Length: the body arrives in pieces and only its end tells its size.
        res.writeHead(out.status, out.headers)
        for (let i = 0; i < out.body.byteLength; i += 1024) res.write(out.body.subarray(i, i + 1024))
        res.end()
      } else {
        res.writeHead(out.status, { ...out.headers, 'content-length': String(out.body.byteLength) }).end(out.body)
      }
    }
    forward().catch(() => { res.writeHead(502).end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}
