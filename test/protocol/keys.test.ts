import { createHash, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { IdentityExistsError, IdentityFileError, loadOrCreateIdentity, readIdentity, writeIdentity } from '../../src/node/identity-files.js'
import { ValidationError } from '../../src/protocol/errors.js'
import { exportPrivatePem, generateIdentity, identityFromPrivatePem, keyIdOf, publicKeyFromPem } from '../../src/protocol/keys.js'

describe('keys', () => {
  it('key id is hex SHA-256 of the SPKI DER', () => {
    const id = generateIdentity()
    const der = id.publicKey.export({ type: 'spki', format: 'der' })
    expect(der.byteLength).toBe(44)
    expect(id.keyId).toBe(createHash('sha256').update(der).digest('hex'))
    expect(keyIdOf(publicKeyFromPem(id.publicKeyPem))).toBe(id.keyId)
  })

  it('round-trips a private key through PKCS#8 PEM', () => {
    const id = generateIdentity()
    const back = identityFromPrivatePem(exportPrivatePem(id))
    expect(back.keyId).toBe(id.keyId)
    expect(back.publicKeyPem).toBe(id.publicKeyPem)
  })

  it('rejects non-Ed25519 keys and garbage with ValidationError', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const priv = ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    const pub = ec.publicKey.export({ type: 'spki', format: 'pem' }).toString()
    expect(() => identityFromPrivatePem(priv)).toThrow(ValidationError)
    expect(() => publicKeyFromPem(pub)).toThrow(/Ed25519/)
    expect(() => publicKeyFromPem('hello')).toThrow(ValidationError)
    expect(() => identityFromPrivatePem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(ValidationError)
    // A private key where a public key belongs is refused, not silently derived.
    expect(() => publicKeyFromPem(exportPrivatePem(generateIdentity()))).toThrow(ValidationError)
  })
})

describe('identity files', () => {
  let dir: string | undefined
  afterEach(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('writes private.pem 0600 and public.pem and reads them back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-id-'))
    const id = generateIdentity()
    const files = await writeIdentity(join(dir, 'node'), id)
    expect((await stat(files.privateKeyFile)).mode & 0o777).toBe(0o600)
    expect(await readFile(files.publicKeyFile, 'utf8')).toBe(id.publicKeyPem)
    expect((await readIdentity(join(dir, 'node'))).keyId).toBe(id.keyId)
  })

  it('refuses to overwrite an identity and keeps the old key', async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-id-'))
    const first = generateIdentity()
    await writeIdentity(dir, first)
    await expect(writeIdentity(dir, generateIdentity())).rejects.toBeInstanceOf(IdentityExistsError)
    expect((await readIdentity(dir)).keyId).toBe(first.keyId)
  })

  it('names the file that is missing, garbled or mismatched', async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-id-'))
    await expect(readIdentity(dir)).rejects.toThrow(join(dir, 'private.pem'))
    await writeFile(join(dir, 'private.pem'), 'garbage', { mode: 0o600 })
    const err = await readIdentity(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IdentityFileError)
    expect((err as IdentityFileError).file).toBe(join(dir, 'private.pem'))
    await writeFile(join(dir, 'private.pem'), exportPrivatePem(generateIdentity()), { mode: 0o600 })
    await writeFile(join(dir, 'public.pem'), generateIdentity().publicKeyPem)
    await expect(readIdentity(dir)).rejects.toThrow(/public\.pem: does not match/)
  })

  it('loadOrCreateIdentity creates once and then loads the same key', async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-id-'))
    const a = await loadOrCreateIdentity(join(dir, 'x'))
    const b = await loadOrCreateIdentity(join(dir, 'x'))
    expect(b.keyId).toBe(a.keyId)
    const [c, d] = await Promise.all([loadOrCreateIdentity(join(dir, 'y')), loadOrCreateIdentity(join(dir, 'y'))])
    expect(c.keyId).toBe(d.keyId)
  })
})
