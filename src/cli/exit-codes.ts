/**
 * Process exit codes shared by every command (documented in docs/cli.md).
 * CI gates read them: 0 is the only "go".
 */
export const EXIT = {
  /** Success; for verdict commands: every target reproducible (and matching where checked). */
  OK: 0,
  /** A verdict command found a target unreproducible, disputed, failed, or not matching the published digest. */
  NOT_REPRODUCIBLE: 1,
  /** Runtime error: bad input file, engine down, network failure. */
  ERROR: 2,
  /** Bad command line. */
  USAGE: 3,
  /** A verdict command found a target still pending (not enough claims yet). */
  PENDING: 4,
  /** A rebuild ran and failed (its signed failure claim was written). */
  BUILD_FAILED: 5,
  /** A verdict command found a target unsettled: every trusted builder answered and no quorum can form. Polling will not change it. */
  UNSETTLED: 6,
  /** `verify-image`: attestations were found, but all were refused (forged, unreadable) or are about another image. */
  FORGED: 7,
  /** Interrupted with Ctrl-C (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130
} as const
