import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { NekoError, ValidationError } from '../protocol/errors.js'
import { exportPrivatePem, generateIdentity, identityFromPrivatePem, publicKeyFromPem, keyIdOf, type SigningIdentity } from '../protocol/keys.js'
import { componentLog, type LoggerComponents } from './logger.js'
import { makeDir } from './make-dir.js'


const PRIVATE_KEY_FILE = 'private.pem'
const PUBLIC_KEY_FILE = 'public.pem'

/** An identity already exists where a new one was to be written; it is never overwritten. */
export class IdentityExistsError extends NekoError {
  override name = 'IdentityExistsError'
  override readonly code = 'ERR_IDENTITY_EXISTS'
  constructor (readonly file: string) {
    super(`${file} already exists; refusing to overwrite an identity`)
  }
}

/** A key file is missing, unreadable or garbled; `file` is its path. */
export class IdentityFileError extends NekoError {
  override name = 'IdentityFileError'
  override readonly code = 'ERR_IDENTITY_FILE'
  constructor (readonly file: string, message: string) {
    super(`${file}: ${message}`)
  }
}

function isErrno (err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code
}

/**
 * Write `dir/private.pem` (PKCS#8, mode 0600) and `dir/public.pem` (SPKI). Refuses to
 * overwrite either file: losing a builder key would orphan every claim it signed.
 */
export async function writeIdentity (dir: string, identity: SigningIdentity, components: LoggerComponents = {}): Promise<{ privateKeyFile: string, publicKeyFile: string }> {
  const privateKeyFile = join(dir, PRIVATE_KEY_FILE)
  const publicKeyFile = join(dir, PUBLIC_KEY_FILE)
  await makeDir(dir, 0o700)
  for (const file of [privateKeyFile, publicKeyFile]) {
    try {
      await stat(file)
      throw new IdentityExistsError(file)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
  }
  try {
    // 'wx' fails if the file appeared meanwhile, so a concurrent writer never clobbers a key.
    await writeFile(privateKeyFile, exportPrivatePem(identity), { flag: 'wx', mode: 0o600 })
    await chmod(privateKeyFile, 0o600)
    await writeFile(publicKeyFile, identity.publicKeyPem, { flag: 'wx', mode: 0o644 })
  } catch (err) {
    if (isErrno(err, 'EEXIST')) throw new IdentityExistsError((err as NodeJS.ErrnoException).path ?? privateKeyFile)
    throw err
  }
  componentLog(components.logger, 'identity').debug({ keyId: identity.keyId, dir }, 'wrote identity')
  return { privateKeyFile, publicKeyFile }
}

async function readText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new IdentityFileError(file, 'missing (create one with `neko-rebuilder keygen --out DIR`)')
    throw new IdentityFileError(file, `unreadable (${(err as Error).message})`)
  }
}

/** Read the identity in `dir`; `public.pem`, when present, must match the private key. */
export async function readIdentity (dir: string, components: LoggerComponents = {}): Promise<SigningIdentity> {
  const privateKeyFile = join(dir, PRIVATE_KEY_FILE)
  const publicKeyFile = join(dir, PUBLIC_KEY_FILE)
  let identity: SigningIdentity
  try {
    identity = identityFromPrivatePem(await readText(privateKeyFile))
  } catch (err) {
    if (err instanceof ValidationError) throw new IdentityFileError(privateKeyFile, err.message)
    throw err
  }
  const mode = (await stat(privateKeyFile)).mode & 0o777
  // The mode as `ls -l` and chmod write it (0644), not the group and other bits alone.
  if ((mode & 0o077) !== 0) componentLog(components.logger, 'identity').warn({ file: privateKeyFile, mode: `0${mode.toString(8).padStart(3, '0')}` }, 'private key is readable by other users; chmod 600 it')
  let publicPem: string | undefined
  try {
    publicPem = await readFile(publicKeyFile, 'utf8')
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw new IdentityFileError(publicKeyFile, `unreadable (${(err as Error).message})`)
  }
  if (publicPem !== undefined) {
    let keyId: string
    try {
      keyId = keyIdOf(publicKeyFromPem(publicPem))
    } catch (err) {
      if (err instanceof ValidationError) throw new IdentityFileError(publicKeyFile, err.message)
      throw err
    }
    if (keyId !== identity.keyId) throw new IdentityFileError(publicKeyFile, `does not match ${privateKeyFile} (key id ${keyId}, expected ${identity.keyId})`)
  }
  return identity
}

/** The identity in `dir`, created on first run. */
export async function loadOrCreateIdentity (dir: string, components: LoggerComponents = {}): Promise<SigningIdentity> {
  try {
    await stat(join(dir, PRIVATE_KEY_FILE))
    return await readIdentity(dir, components)
  } catch (err) {
    if (err instanceof NekoError || !isErrno(err, 'ENOENT')) throw err
  }
  const identity = generateIdentity()
  try {
    await writeIdentity(dir, identity, components)
    return identity
  } catch (err) {
    // Another process created it first: use theirs.
    if (err instanceof IdentityExistsError) return await readIdentity(dir, components)
    throw err
  }
}

/**
 * The public key of an identity: `path` is its directory (public.pem, else private.pem) or a
 * PEM file. Returns the SPKI PEM and the key id; needs no private key when public.pem is there.
 */
export async function readPublicKey (path: string, components: LoggerComponents = {}): Promise<{ publicKeyPem: string, keyId: string, file: string }> {
  const isDir = await stat(path).then(s => s.isDirectory(), (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new IdentityFileError(path, 'missing (create one with `neko-rebuilder keygen --out DIR`)')
    throw err
  })
  if (isDir) {
    const pub = join(path, PUBLIC_KEY_FILE)
    if (!await stat(pub).then(() => true, () => false)) {
      const identity = await readIdentity(path, components)
      return { publicKeyPem: identity.publicKeyPem, keyId: identity.keyId, file: join(path, PRIVATE_KEY_FILE) }
    }
    path = pub
  }
  const text = await readText(path)
  try {
    if (text.includes('PRIVATE KEY')) {
      const identity = identityFromPrivatePem(text)
      return { publicKeyPem: identity.publicKeyPem, keyId: identity.keyId, file: path }
    }
    const key = publicKeyFromPem(text)
    return { publicKeyPem: key.export({ type: 'spki', format: 'pem' }).toString(), keyId: keyIdOf(key), file: path }
  } catch (err) {
    if (err instanceof ValidationError) throw new IdentityFileError(path, err.message)
    throw err
  }
}
