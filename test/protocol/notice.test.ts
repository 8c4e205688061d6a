import { describe, expect, it } from 'vitest'
import { signEnvelope } from '../../src/protocol/dsse.js'
import { LimitError, SignatureError, ValidationError } from '../../src/protocol/errors.js'
import { decodeNotice, NOTICE_LIMITS, NOTICE_PAYLOAD_TYPE, NoticeExpiredError, signNotice, type Notice } from '../../src/protocol/notice.js'
import { signClaim } from '../../src/protocol/messages.js'
import { digestOf, fixedIdentity, successClaim, target } from './fixtures.js'

const T0 = Date.parse('2026-03-01T12:00:00Z')
const iso = (ms: number): string => new Date(ms).toISOString()

function notice (over: Partial<Notice> = {}): Notice {
  return { target: target(), engineId: 'ENGINE-A', expectedMs: 600_000, startedAt: iso(T0), issuedAt: iso(T0), expiresAt: iso(T0 + 180_000), ...over }
}

describe('work notices', () => {
  const id = fixedIdentity(7)

  it('round-trips: the signer, the target and the expiry come back verified', () => {
    const env = signNotice(notice(), id)
    expect(env.payloadType).toBe(NOTICE_PAYLOAD_TYPE)
    const d = decodeNotice(JSON.stringify(env), T0 + 1000)
    expect(d.keyId).toBe(id.keyId)
    expect(d.notice.target).toEqual(target())
    expect(d.notice.expiresAt).toBe(iso(T0 + 180_000))
    expect(d.id).toMatch(/^[0-9a-f]{64}$/)
  })

  it('refuses a forged notice: a changed target no longer matches the signature', () => {
    const env = signNotice(notice(), id)
    const forged = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Notice
    forged.target.variant = 'xfce'
    const tampered = { ...env, payload: Buffer.from(JSON.stringify(forged)).toString('base64') }
    expect(() => decodeNotice(JSON.stringify(tampered), T0)).toThrow(SignatureError)
  })

  it('refuses an expired notice with its own error, and says by how much', () => {
    const env = JSON.stringify(signNotice(notice(), id))
    const err = (() => { try { decodeNotice(env, T0 + 240_000); return undefined } catch (e) { return e } })()
    expect(err).toBeInstanceOf(NoticeExpiredError)
    expect((err as NoticeExpiredError).expiredMsAgo).toBe(60_000)
    expect((err as Error).message).toBe('notice.expiresAt: expired 60 s ago')
  })

  it('refuses an oversized envelope before parsing it', () => {
    const big = 'x'.repeat(NOTICE_LIMITS.envelopeBytes + 1)
    expect(() => decodeNotice(big, T0)).toThrow(LimitError)
    expect(() => signNotice(notice({ engineId: 'e'.repeat(300) }), id)).toThrow(/engineId/)
  })

  it('refuses a notice that would hold a target too long, or is dated ahead', () => {
    expect(() => signNotice(notice({ expiresAt: iso(T0 + NOTICE_LIMITS.maxTtlMs + 1) }), id)).toThrow(/minutes after issuedAt/)
    const ahead = signNotice(notice({ startedAt: iso(T0 + 600_000), issuedAt: iso(T0 + 600_000), expiresAt: iso(T0 + 700_000) }), id)
    expect(() => decodeNotice(JSON.stringify(ahead), T0)).toThrow(/issuedAt: is in the future/)
  })

  it('never takes a claim for a notice, nor a notice payload with unknown fields', () => {
    const claim = JSON.stringify(signClaim(successClaim(digestOf('a')), id))
    expect(() => decodeNotice(claim, T0)).toThrow(/payloadType: must be/)
    const extra = signEnvelope(NOTICE_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ ...notice(), priority: 1 })), id)
    expect(() => decodeNotice(JSON.stringify(extra), T0)).toThrow(ValidationError)
  })
})
