/**
 * The witnessing budget of a log: a token bucket that decides when the log's node pushes its
 * newest checkpoint to its witnesses. Every node logs every message it stores, so each claim
 * of a release grows all N logs; a push round to the log's `w` witnesses costs about `2w`
 * exchanges (the pushed checkpoint, the consistency proof the witness asks for). Pushing every
 * checkpoint made a release cost each node several times its own messages in witnessing.
 *
 * - A round costs `2 x targets` tokens.
 * - Each new entry of the log earns `tokensPerEntry` (default 1), up to two rounds: a burst
 *   earns its own rounds, and what it leaves over pays for the checkpoint after its last entry
 *   at once.
 * - Time earns `floorTokens` (2w = 16) per `floorMs` (default 5 minutes), up to one round: a
 *   round to the full w witnesses every 5 minutes, sooner where fewer witnesses make it cheaper
 *   (a small network). After a quiet spell the first checkpoint goes at once; in a slow
 *   trickle a checkpoint waits at most about `floorMs`.
 *
 * So a release of M entries costs each log at most M + one round (earned while idle) +
 * `floorTokens` per `floorMs` it lasts. A checkpoint waiting for tokens is superseded by the
 * next one (witness.ts keeps only the newest waiting).
 */
export interface PushBudgetInit {
  /** Tokens each new log entry earns (default 1: a release costs about one exchange per entry it adds). */
  tokensPerEntry?: number
  /** Time earns `floorTokens` per this long, up to one round (ms, default 5 minutes). */
  floorMs?: number
  /** Tokens time earns per `floorMs` (default 16: a round to 8 witnesses). */
  floorTokens?: number
}

export const DEFAULT_PUSH_FLOOR_MS = 300_000
export const DEFAULT_PUSH_FLOOR_TOKENS = 16

export interface PushBudget {
  /**
   * Whether a round to `targets` witnesses for a checkpoint of `size` may go now; if so its
   * cost is taken. Entries up to `size` earn their tokens once, whatever is decided.
   */
  take: (size: number, targets: number, now?: number) => boolean
  /** How long until time alone has earned a round to `targets` witnesses (ms, 0 when it may go now). */
  waitMs: (targets: number, now?: number) => number
  /** Tokens in the bucket now (for stats). */
  tokens: (targets: number, now?: number) => number
}

export function createPushBudget (init: PushBudgetInit = {}): PushBudget {
  const perEntry = init.tokensPerEntry ?? 1
  const floorMs = init.floorMs ?? DEFAULT_PUSH_FLOOR_MS
  const floorTokens = init.floorTokens ?? DEFAULT_PUSH_FLOOR_TOKENS
  if (!(floorTokens > 0) || !Number.isFinite(floorTokens)) throw new TypeError(`floorTokens must be a positive number, got ${String(init.floorTokens)}`)
  if (!(perEntry >= 0) || !Number.isFinite(perEntry)) throw new TypeError(`tokensPerEntry must be a non-negative number, got ${String(init.tokensPerEntry)}`)
  if (!Number.isSafeInteger(floorMs) || floorMs < 1) throw new TypeError(`floorMs must be a positive integer, got ${String(init.floorMs)}`)
  // Undefined until the first round, which is free.
  let level: number | undefined
  let at = 0
  // Entries up to this size have earned their tokens.
  let earnedSize: number | undefined

  function refill (round: number, now: number): number {
    let l = level ?? round
    // Time lifts the bucket to one round at most; entries may have filled it beyond.
    if (l < round) l = Math.min(round, l + (now - at) * floorTokens / floorMs)
    level = l
    at = now
    return l
  }

  return {
    take (size, targets, now = Date.now()) {
      const round = 2 * targets
      // The first push after a start is free: the bucket is full for the first entries that follow.
      if (level === undefined) {
        level = round
        at = now
        earnedSize = size
        return true
      }
      let l = refill(round, now)
      if (earnedSize !== undefined && size > earnedSize) l = Math.max(l, Math.min(2 * round, l + (size - earnedSize) * perEntry))
      earnedSize = Math.max(earnedSize ?? size, size)
      if (l < round) {
        level = l
        return false
      }
      level = l - round
      return true
    },
    waitMs (targets, now = Date.now()) {
      const round = 2 * targets
      const l = refill(round, now)
      return l >= round ? 0 : Math.ceil((round - l) * floorMs / floorTokens)
    },
    tokens: (targets, now = Date.now()) => refill(2 * targets, now)
  }
}
