import { describe, expect, it } from 'vitest'
import { createPushBudget } from '../../src/node/tlog/index.js'

describe('the push budget (token bucket)', () => {
  it('lets a round go when entries or time have earned it, and carries a burst over to its last checkpoint', () => {
    const b = createPushBudget({ floorMs: 60_000 })
    // 8 witnesses: a round costs 16. A node's first push after it starts is free, and the next
    // entry's checkpoint goes at once too (the bucket starts full).
    expect(b.take(10, 8, 0)).toBe(true)
    expect(b.tokens(8, 0)).toBe(16)
    expect(b.take(11, 8, 0)).toBe(true)
    // 4 entries earn 4 (and a second of time 16/60): not enough; the wait is what time must still earn.
    expect(b.take(15, 8, 1_000)).toBe(false)
    expect(b.waitMs(8, 1_000)).toBeCloseTo((16 - 5 - 16 / 60) * 60_000 / 16, -1)
    // The same entries do not earn twice; 11 more make the round.
    expect(b.take(15, 8, 1_000)).toBe(false)
    expect(b.take(26, 8, 1_000)).toBe(true)
    expect(b.tokens(8, 1_000)).toBeCloseTo(16 / 60, 6)
    // A burst fills the bucket up to two rounds: after its push one round is left, so the
    // checkpoint after its last entry (one entry more) goes at once.
    expect(b.take(126, 8, 2_000)).toBe(true)
    expect(b.take(127, 8, 2_000)).toBe(true)
    // Then a trickle: one entry waits for time, one round per floorMs at most.
    expect(b.take(128, 8, 3_000)).toBe(false)
    expect(b.take(128, 8, 3_000 + 60_000)).toBe(true)
    // Time alone fills one round at most: after an hour, one round, not sixty.
    expect(b.take(129, 8, 3_663_000)).toBe(true)
    expect(b.take(130, 8, 3_663_000)).toBe(false)
  })

  it('earns the same tokens by time whatever the round costs: a round to fewer witnesses comes sooner', () => {
    // 2 witnesses (a small network): a round costs 4; time earns 16 per minute, a round in 15 s.
    const b = createPushBudget({ floorMs: 60_000 })
    expect(b.take(1, 2, 0)).toBe(true)
    expect(b.take(5, 2, 0)).toBe(true)
    expect(b.take(6, 2, 0)).toBe(true)
    expect(b.take(7, 2, 0)).toBe(false)
    expect(b.waitMs(2, 0)).toBe(2 * 60_000 / 16)
    expect(b.take(7, 2, 7_500)).toBe(true)
  })

  it('refuses knobs that make no sense', () => {
    expect(() => createPushBudget({ floorMs: 0 })).toThrow(/floorMs/)
    expect(() => createPushBudget({ tokensPerEntry: -1 })).toThrow(/tokensPerEntry/)
    expect(() => createPushBudget({ floorTokens: 0 })).toThrow(/floorTokens/)
  })
})

// The budget on a real log and witness: test/tlog/witness-push.test.ts.
