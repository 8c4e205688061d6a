import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checkAnnouncement } from '../../src/protocol/messages.js'
import { WIRE } from '../../src/protocol/patterns.js'
import type { Announcement } from '../../src/protocol/types.js'
import { announcement, COMMIT } from './fixtures.js'

function accepted (a: Announcement): boolean {
  try {
    checkAnnouncement(a)
    return true
  } catch {
    return false
  }
}

/** Strings near the edges of a field's rule: its own characters, a few that are refused, and lengths around its limit. */
function near (chars: string, maxLength: number): fc.Arbitrary<string> {
  const char = fc.constantFrom(...chars.split(''), ' ', '@', '#', ':', '~', '\n', 'é', 'A', '-', '/', '.')
  return fc.oneof(
    fc.string({ unit: char, minLength: 0, maxLength: 12 }),
    fc.string({ unit: char, minLength: maxLength - 2, maxLength: maxLength + 2 }),
    fc.string({ unit: fc.constantFrom(...chars.split('')), minLength: maxLength - 2, maxLength: maxLength + 2 })
  )
}

// WIRE is what the HTTP API, the CLI, the source checkout and the rebuilder apply; a message
// is judged by its schema. Both must give the same answer for every value.
describe('WIRE patterns agree with message validation', () => {
  it('tag', () => {
    fc.assert(fc.property(near('abz_09.+-/', 256), tag => {
      expect(WIRE.tag.test(tag)).toBe(accepted(announcement({ tag })))
    }), { numRuns: 300 })
    expect(WIRE.tag.test('v'.repeat(230))).toBe(true)
    expect(WIRE.tag.test('v'.repeat(256))).toBe(true)
    expect(WIRE.tag.test('v'.repeat(257))).toBe(false)
  })

  it('commit', () => {
    fc.assert(fc.property(near('0123456789abcdef', 40), commit => {
      expect(WIRE.commit.test(commit)).toBe(accepted(announcement({ commit })))
    }), { numRuns: 300 })
    expect(WIRE.commit.test(COMMIT)).toBe(true)
    expect(WIRE.commit.test('a'.repeat(64))).toBe(false)
    expect(accepted(announcement({ commit: 'a'.repeat(64) }))).toBe(false)
  })

  it('platform', () => {
    fc.assert(fc.property(near('linux/amd64/v8_', 64), platform => {
      expect(WIRE.platform.test(platform)).toBe(accepted(announcement({ targets: [{ variant: 'base', platform }] })))
    }), { numRuns: 300 })
  })

  it('digest', () => {
    const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdefA'.split('')), minLength: 62, maxLength: 66 })
    fc.assert(fc.property(fc.oneof(hex.map(h => `sha256:${h}`), hex, near('sha256:0f', 71)), digest => {
      expect(WIRE.digest.test(digest)).toBe(accepted(announcement({ recipe: { name: 'neko', digest } })))
    }), { numRuns: 300 })
  })
})
