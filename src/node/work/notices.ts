import { decodeNotice, NoticeExpiredError, type DecodedNotice } from '../../protocol/notice.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { targetKey } from '../../protocol/target.js'
import { createRateLimiter } from '../rate-limit.js'

/** A key whose notices keep expiring without a claim: it takes targets and does not build them. */
export interface LapsedTaker {
  keyId: string
  /** Policy name of the key. */
  name?: string
  /** Notices that expired with no claim of that key for their target. */
  lapsed: number
  lastTarget: string
  lastExpiredAt: string
}

export interface NoticeCheck {
  verdict: 'accept' | 'reject' | 'ignore'
  reason?: string
  decoded?: DecodedNotice
}

export interface NoticeBookInit {
  /** Live notices kept at most (of trusted keys; the oldest-expiring goes first). */
  maxNotices?: number
  /** Notices per minute relayed for one key the policy does not trust (kept by none). */
  untrustedPerMinute?: number
  /** An expired notice this recent is ignored, not refused: an honest relay may be that slow. */
  expiryGraceMs?: number
  /** Lapse counts kept at most (keys). */
  maxLapsedKeys?: number
}

export interface NoticeBook {
  /** Judges a notice from gossip at `now` and, when trusted and new, keeps it. Never throws. */
  receive: (data: Uint8Array, now?: number) => NoticeCheck
  /** Keeps this node's own notice (it is not delivered back by gossip). */
  keepOwn: (decoded: DecodedNotice) => void
  /**
   * Live notices for one target: not withdrawn, and renewed on time. A taker renews at half a
   * notice's life; one whose renewal is overdue (by the expiry grace) has most likely crashed,
   * and stops counting then rather than at the notice's end.
   */
  live: (targetKey: string, now?: number) => DecodedNotice[]
  /** Every live notice. */
  liveAll: (now?: number) => DecodedNotice[]
  /** When a key with a live notice expected to be free again (may be past); undefined when it has none. */
  busyUntil: (keyId: string, now?: number) => number | undefined
  /** When the last notice of a target expired or was withdrawn (the target wants builds again since then). */
  reopenedAt: (targetKey: string) => number | undefined
  /** A claim of `keyId` for the target is stored: its notice did not lapse. */
  claimed: (keyId: string, targetKey: string) => void
  /** Drops expired notices (counting lapses); returns the earliest moment a notice left stops counting. */
  prune: (now?: number) => number | undefined
  lapsed: () => LapsedTaker[]
  /** Notices held now. */
  size: () => number
}

const DEFAULTS = { maxNotices: 4096, untrustedPerMinute: 6, expiryGraceMs: 30_000, maxLapsedKeys: 1024 }

/**
 * Notices in memory, bounded: they live minutes and are renewed while a build runs, so a
 * restarted node learns the live ones again within one renewal; nothing in them needs to
 * outlive that (a claim is what is kept). Only keys the policy trusts as builders are kept:
 * a stranger's notice never makes this node skip a target.
 */
export function createNoticeBook (components: { policy: () => TrustPolicy }, init: NoticeBookInit = {}): NoticeBook {
  const maxNotices = init.maxNotices ?? DEFAULTS.maxNotices
  const grace = init.expiryGraceMs ?? DEFAULTS.expiryGraceMs
  const maxLapsedKeys = init.maxLapsedKeys ?? DEFAULTS.maxLapsedKeys
  const strangers = createRateLimiter({ perMinute: init.untrustedPerMinute ?? DEFAULTS.untrustedPerMinute, burst: 3, maxKeys: 4096 })
  /** By `keyId target`. */
  const held = new Map<string, { d: DecodedNotice, expires: number, due: number, target: string }>()
  const reopened = new Map<string, number>()
  const claims = new Set<string>()
  const lapses = new Map<string, LapsedTaker>()

  function put (d: DecodedNotice, now: number): 'kept' | 'stale' {
    const target = targetKey(d.notice.target)
    const k = `${d.keyId} ${target}`
    const old = held.get(k)
    if (old != null && Date.parse(old.d.notice.issuedAt) >= Date.parse(d.notice.issuedAt)) return 'stale'
    if (d.notice.withdrawn === true) {
      held.delete(k)
      reopened.set(target, now)
      return 'kept'
    }
    if (old == null && held.size >= maxNotices) {
      prune(now)
      if (held.size >= maxNotices) {
        // The one nearest its end is worth least.
        let victim: string | undefined
        let soonest = Infinity
        for (const [key, h] of held) if (h.expires < soonest) { soonest = h.expires; victim = key }
        if (victim !== undefined) held.delete(victim)
      }
    }
    const issued = Date.parse(d.notice.issuedAt)
    const expires = Date.parse(d.notice.expiresAt)
    // Its renewal is due at half its life; allow a slow relay the grace.
    held.set(k, { d, expires, due: Math.min(expires, issued + (expires - issued) / 2 + grace), target })
    return 'kept'
  }

  function prune (now = Date.now()): number | undefined {
    let earliest: number | undefined
    for (const [k, h] of held) {
      if (h.expires > now) {
        // Overdue: the target wants builds again from then, though the notice is kept until it ends.
        if (h.due <= now) reopened.set(h.target, Math.max(reopened.get(h.target) ?? 0, h.due))
        earliest = Math.min(earliest ?? Infinity, h.due > now ? h.due : h.expires)
        continue
      }
      held.delete(k)
      reopened.set(h.target, Math.max(reopened.get(h.target) ?? 0, h.due))
      if (claims.has(k)) continue
      const entry = lapses.get(h.d.keyId) ?? { keyId: h.d.keyId, lapsed: 0, lastTarget: h.target, lastExpiredAt: h.d.notice.expiresAt }
      lapses.delete(h.d.keyId)
      if (lapses.size >= maxLapsedKeys) lapses.delete(lapses.keys().next().value as string)
      lapses.set(h.d.keyId, { ...entry, lapsed: entry.lapsed + 1, lastTarget: h.target, lastExpiredAt: h.d.notice.expiresAt })
    }
    return earliest
  }

  return {
    receive (data, now = Date.now()) {
      let d: DecodedNotice
      try {
        d = decodeNotice(data, now)
      } catch (err) {
        // Forged, malformed, oversized, or a replay long expired: the sender pays for it.
        if (err instanceof NoticeExpiredError && err.expiredMsAgo <= grace) return { verdict: 'ignore', reason: err.message }
        return { verdict: 'reject', reason: (err as Error).message }
      }
      if (!components.policy().builderKeys.has(d.keyId)) {
        // Relayed for peers whose policy may trust it, at a stranger's rate; never kept here.
        return strangers.take(d.keyId, now) ? { verdict: 'accept', decoded: d } : { verdict: 'ignore', reason: 'over the rate for keys the policy does not trust' }
      }
      return put(d, now) === 'kept' ? { verdict: 'accept', decoded: d } : { verdict: 'ignore', reason: 'an older notice than the one held (replayed or late)' }
    },

    keepOwn (d) { put(d, Date.now()) },

    live (target, now = Date.now()) {
      const out: DecodedNotice[] = []
      for (const h of held.values()) if (h.target === target && h.due > now) out.push(h.d)
      return out
    },

    liveAll (now = Date.now()) {
      const out: DecodedNotice[] = []
      for (const h of held.values()) if (h.due > now) out.push(h.d)
      return out
    },

    busyUntil (keyId, now = Date.now()) {
      let until: number | undefined
      for (const h of held.values()) {
        if (h.d.keyId !== keyId || h.due <= now) continue
        // Past its expected end (overrunning) stays past: such a builder is counted as about to be free.
        until = Math.max(until ?? 0, Date.parse(h.d.notice.startedAt) + h.d.notice.expectedMs)
      }
      return until
    },

    reopenedAt: (target) => reopened.get(target),

    claimed (keyId, target) {
      const k = `${keyId} ${target}`
      claims.add(k)
      held.delete(k)
      // Bounded like the notices: only pairs that could still be held matter.
      if (claims.size > maxNotices * 4) claims.delete(claims.values().next().value as string)
    },

    prune,

    lapsed () {
      const policy = components.policy()
      return [...lapses.values()].map(l => {
        const b = policy.builderById.get(l.keyId)
        return b != null ? { ...l, name: b.name } : l
      }).sort((a, b) => b.lapsed - a.lapsed)
    },

    size: () => held.size
  }
}
