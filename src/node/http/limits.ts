/** Bounds on what one HTTP request may ask of the feed server. */
export const HTTP_LIMITS = {
  /** Longest request URL (path and query), characters. */
  maxUrlLength: 2048,
  /** Most query parameters in one request. */
  maxQueryParams: 16,
  /** Longest value of one query parameter. */
  maxParamLength: 512,
  /** Largest `limit` a client may ask for. */
  maxPageSize: 1000,
  /** `limit` when none is given. */
  defaultPageSize: 100,
  /** Largest header section, bytes (node's `maxHeaderSize`). */
  maxHeaderBytes: 16 * 1024,
  /** Most header lines. */
  maxHeadersCount: 64,
  /** Time to receive the whole header section, ms (slowloris guard). */
  headersTimeoutMs: 10_000,
  /** Time to receive a whole request, ms. */
  requestTimeoutMs: 30_000,
  /** Idle time before a keep-alive connection is closed, ms. */
  keepAliveTimeoutMs: 5_000,
  /** Connections served at once; more are refused. */
  maxConnections: 256,
  /** Items in /feed.json. */
  feedItems: 50,
  /** Releases the dashboard and feed compute verdicts for. */
  feedReleases: 20
} as const
