import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { envelopeId, pae } from '../../src/protocol/dsse.js'
import { decodeMessage, signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import { announcement, digestOf, fixedIdentity, successClaim } from './fixtures.js'

// docs/protocol.md promises byte-exact examples: regenerate them and compare.
const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')

function block (marker: string): string {
  const at = doc.indexOf(`<!-- example:${marker} -->`)
  expect(at, marker).toBeGreaterThan(0)
  const m = /```json\n(.*)\n```/.exec(doc.slice(at))
  return m?.[1] as string
}

describe('docs/protocol.md worked examples', () => {
  const key = fixedIdentity(1)

  it('names the test key id', () => {
    expect(doc).toContain(key.keyId)
    expect(doc).toContain(key.publicKeyPem.trim())
  })

  it('the announcement envelope is exactly what signing gives, and verifies', () => {
    const env = signAnnouncement(announcement({ targets: [{ variant: 'base', platform: 'linux/amd64' }] }), key)
    expect(block('announcement-envelope')).toBe(JSON.stringify(env))
    const d = decodeMessage(block('announcement-envelope'), { keys: new Map([[key.keyId, key.publicKey]]) })
    expect(d.kind).toBe('announcement')
    expect(doc).toContain(`Its envelope id is \`${envelopeId(env)}\``)
    const payload = Buffer.from(env.payload, 'base64')
    expect(doc).toContain('```text\n' + payload.toString('utf8') + '\n```')
    const head = `DSSEv1 28 application/vnd.in-toto+json ${payload.byteLength} `
    expect(Buffer.from(pae(env.payloadType, payload)).subarray(0, head.length).toString()).toBe(head)
    expect(doc).toContain(`the ${Buffer.byteLength(head)} bytes \`${head}\``)
  })

  it('the claim envelope is exactly what signing gives', () => {
    const c = successClaim(digestOf('2'))
    if (c.result === undefined) throw new Error('no result')
    c.result.diffIds = [digestOf('4')]
    c.result.layerSteps = ['COPY busybox /bin/busybox # buildkit']
    const env = signClaim(c, key)
    expect(block('claim-envelope')).toBe(JSON.stringify(env))
    expect(doc).toContain(`Its envelope id is \`${envelopeId(env)}\``)
  })
})
