/** Bounds on what one store call accepts or returns, so no single read or write can exhaust memory. */
export const STORE_LIMITS = {
  /** Most items one messagesSince page returns. */
  maxPage: 1000,
  /** Most index entries one filtered messagesSince call scans before returning a shorter page. */
  maxScan: 20_000,
  /** Most claims returned for one target or one commit. */
  maxClaimsPerQuery: 5000,
  /** Most announcements one query returns. */
  maxAnnouncements: 5000,
  /** Most distinct targets or jobs one listing returns. */
  maxListing: 20_000,
  /** Largest state value (bytes of JSON). */
  maxStateBytes: 1024 * 1024,
  /** Divergence reports kept in all; beyond it the oldest go. */
  maxReports: 500,
  /** Divergence reports kept per target (one per pair of claims); beyond it the oldest of the target go. */
  maxReportsPerTarget: 16,
  /** Smoke test results kept in all; beyond it the oldest go. */
  maxTestResults: 2000,
  /** Smoke test results kept per target (one per signer); beyond it the oldest of the target go. */
  maxTestResultsPerTarget: 16,
  /** This node's own smoke test outcomes waiting for their target's verdict; beyond it the oldest go. */
  maxWaitingTestResults: 256,
  /** Longest id, key id or state key. */
  maxKeyLength: 512
} as const
