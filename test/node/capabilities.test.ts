import { describe, expect, it } from 'vitest'
import { CAPABILITIES_PREDICATE, decodeCapabilities, signCapabilities, type Capabilities } from '../../src/protocol/capabilities.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signEnvelope } from '../../src/protocol/dsse.js'
import { PAYLOAD_TYPE } from '../../src/protocol/types.js'
import { SignatureError, ValidationError } from '../../src/protocol/errors.js'

const caps: Capabilities = {
  arch: 'amd64',
  platforms: [{ platform: 'linux/amd64', emulated: false }, { platform: 'linux/arm64', emulated: true }],
  nvidia: false,
  builds: true,
  engine: { name: 'docker', version: '26.1.0' },
  buildx: '0.13.1',
  buildkit: 'v0.13.2',
  tool: { name: 'neko-rebuilder', version: '0.1.0' },
  issuedAt: '2026-01-01T00:00:00Z'
}

describe('capabilities statement', () => {
  it('round-trips with the signer as subject', () => {
    const id = generateIdentity()
    const env = signCapabilities(caps, id)
    const decoded = decodeCapabilities(JSON.stringify(env))
    expect(decoded.keyId).toBe(id.keyId)
    expect(decoded.capabilities).toEqual(caps)
    expect(decoded.id).toMatch(/^[0-9a-f]{64}$/)
    const statement = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicateType: string, subject: Array<{ digest: { sha256: string } }> }
    expect(statement.predicateType).toBe(CAPABILITIES_PREDICATE)
    expect(statement.subject[0]!.digest.sha256).toBe(id.keyId)
  })

  it('rejects a tampered payload, a bad field and a statement about another key', () => {
    const id = generateIdentity()
    const env = signCapabilities(caps, id)
    const payload = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { predicate: Capabilities }
    payload.predicate.nvidia = true
    expect(() => decodeCapabilities({ ...env, payload: Buffer.from(JSON.stringify(payload)).toString('base64') })).toThrow(SignatureError)
    expect(() => signCapabilities({ ...caps, platforms: 'linux/amd64' as unknown as Capabilities['platforms'] }, id)).toThrow(ValidationError)
    expect(() => signCapabilities({ ...caps, issuedAt: 'yesterday' }, id)).toThrow(/issuedAt/)
    // Signed by one key, speaking for another.
    const other = generateIdentity()
    const lying = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { subject: Array<{ name: string, digest: { sha256: string } }> }
    lying.subject = [{ name: `key:${other.keyId}`, digest: { sha256: other.keyId } }]
    expect(() => decodeCapabilities(signEnvelope(PAYLOAD_TYPE, Buffer.from(JSON.stringify(lying)), id))).toThrow(/subject/)
  })
})
