import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { componentLog, type ComponentLogger } from '../logger.js'
import type { Metrics } from '../metrics.js'
import type { Store } from '../store/types.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { PublishedLookup } from '../consensus/published.js'
import type { SetAsideLookup } from '../consensus/set-aside.js'
import { createConsensusService, type ConsensusService } from '../consensus/service.js'
import { loadDashboard, type DashboardAsset } from './dashboard.js'
import { MethodNotAllowedError, UriTooLongError } from './errors.js'
import { HTTP_LIMITS } from './limits.js'
import { sendError, setCommonHeaders } from './respond.js'
import { createRoutes, type CatchUp } from './routes.js'
import type { JobsResponse } from './api.js'
import type { TlogRouteContext } from './tlog-routes.js'
import type { HttpWitness } from '../tlog/http-witness.js'
import type { NetworkLog } from '../tlog/network-log.js'
import { ADD_CHECKPOINT_ROUTE, serveAddCheckpoint } from './witness-route.js'


export interface FeedServerComponents {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  store: Store
  /** The node's consensus view, fed by its follower loop; without it the feed keeps its own, which reads on from the store at each request. */
  consensus?: ConsensusService
  policy: TrustPolicy
  metrics?: Metrics
  /** What the local builders can build (`daemon.builders()`), served at /api/v1/builders. */
  builders?: () => unknown[]
  /** The node's reachability and connections, served at /api/v1/peers. */
  peers?: () => unknown
  /** The node's build queue, served at /api/v1/jobs. */
  jobs?: (opts: { recent: number }) => Promise<JobsResponse>
  /** Whether this node's host builds (`scheduler.health()`), served with /api/v1/builders. */
  host?: () => unknown
  /** Digests the registry publishes for a release; without it every published match is `unknown`. */
  published?: PublishedLookup
  /** The node's transparency log, served under /tlog/. */
  tlog?: TlogRouteContext
  /** Builder keys the verdicts do not count, with the reason (proven split views). */
  setAside?: SetAsideLookup
  /** How far the node's back-fill is behind its peers, served in /healthz. */
  catchUp?: () => CatchUp
  /** The node as a C2SP tlog-witness: `POST /tlog/add-checkpoint`. */
  witness?: HttpWitness
  /** The network log (`join --network-log`), served under /network-log/. */
  networkLog?: Pick<NetworkLog, 'checkpoint' | 'tile'>
}

export interface FeedServerInit {
  host: string
  /** 0 picks a free port. */
  port: number
  maxConnections?: number
}

export interface FeedServer {
  start (): Promise<{ url: string }>
  stop (): Promise<void>
}

/**
 * The node's public, read-only HTTP feed: JSON API, the signed claims as JSON Lines,
 * a JSON Feed, Prometheus metrics and the dashboard. Plain `node:http`: a handful of GET
 * routes need no framework, and every limit stays visible here.
 */
export function createFeedServer (components: FeedServerComponents, init: FeedServerInit): FeedServer {
  const log = componentLog(components.logger, 'http')
  const consensus = components.consensus ?? createConsensusService({ store: components.store, policy: components.policy, published: components.published, setAside: components.setAside })
  let server: Server | undefined
  const sockets = new Set<Socket>()

  async function handle (req: IncomingMessage, res: ServerResponse, routes: ReturnType<typeof createRoutes>): Promise<void> {
    setCommonHeaders(res)
    const rawUrl = req.url ?? '/'
    if (rawUrl.length > HTTP_LIMITS.maxUrlLength) throw new UriTooLongError(HTTP_LIMITS.maxUrlLength, rawUrl.length)
    const method = req.method ?? 'GET'
    if (method === 'OPTIONS') {
      // CORS preflight: only safe methods are ever allowed.
      res.statusCode = 204
      res.setHeader('Allow', 'GET, HEAD, OPTIONS')
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
      res.setHeader('Access-Control-Allow-Headers', 'If-None-Match, Accept')
      res.setHeader('Access-Control-Max-Age', '86400')
      res.end()
      return
    }
    if (method !== 'GET' && method !== 'HEAD') throw new MethodNotAllowedError(method)
    const url = new URL(rawUrl, 'http://feed.invalid')
    await routes.dispatch(req, res, url)
  }

  return {
    async start () {
      if (server != null) throw new Error('feed server already started')
      // The API matters more than the page: without the assets the feed still serves, and `/` is a 404.
      const dashboard = await loadDashboard().catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'dashboard assets missing; serving the API only')
        return new Map<string, DashboardAsset>()
      })
      const routes = createRoutes({ ...components, published: components.published !== undefined, consensus, dashboard })
      const s = createServer({
        maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
        headersTimeout: HTTP_LIMITS.headersTimeoutMs,
        requestTimeout: HTTP_LIMITS.requestTimeoutMs,
        keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs
      }, (req, res) => {
        const witness = components.witness
        if (witness !== undefined && req.method === 'POST' && req.url === ADD_CHECKPOINT_ROUTE) {
          setCommonHeaders(res)
          void serveAddCheckpoint(req, res, witness).catch((err: unknown) => {
            log.warn({ err }, 'add-checkpoint failed')
            if (!res.headersSent) sendError(req, res, err)
            else res.destroy()
          })
          return
        }
        // Other request bodies are never read: drain them so keep-alive connections stay usable.
        req.resume()
        handle(req, res, routes).catch(err => {
          if (res.headersSent) {
            log.warn({ err, url: req.url }, 'response failed after headers were sent')
            res.destroy()
            return
          }
          if (!(err instanceof Error) || !('code' in err)) log.error({ err, url: req.url }, 'request failed')
          sendError(req, res, err)
        })
      })
      s.maxHeadersCount = HTTP_LIMITS.maxHeadersCount
      s.maxConnections = init.maxConnections ?? HTTP_LIMITS.maxConnections
      s.on('connection', socket => {
        sockets.add(socket)
        socket.once('close', () => sockets.delete(socket))
      })
      s.on('clientError', (err, socket) => {
        // Malformed requests, oversized headers and header timeouts: answer if the socket still can.
        if (socket.writable) {
          const code = (err as { code?: string }).code
          const [status, text] = code === 'HPE_HEADER_OVERFLOW'
            ? [431, 'Request Header Fields Too Large']
            : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request']
          socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
        } else {
          socket.destroy()
        }
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(init.port, init.host, () => {
          s.off('error', reject)
          resolve()
        })
      })
      server = s
      const addr = s.address() as AddressInfo
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      const url = `http://${host}:${addr.port}`
      log.info({ url }, 'feed server listening')
      return { url }
    },

    async stop () {
      const s = server
      if (s == null) return
      server = undefined
      const closed = new Promise<void>(resolve => s.close(() => resolve()))
      s.closeIdleConnections()
      // Long streams (claims.intoto.jsonl) would hold close() open: end them.
      for (const socket of sockets) socket.destroy()
      await closed
    }
  }
}
