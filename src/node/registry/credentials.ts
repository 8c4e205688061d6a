import { readFile } from 'node:fs/promises'
import { ValidationError } from '../../protocol/errors.js'
import type { RegistryCredentials } from './transport.js'

const MAX_AUTH_FILE_BYTES = 1024 * 1024

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Registry credentials from a Docker `config.json` (`{"auths": {"HOST": {"auth":
 * base64("user:password")}}}` or `username`/`password` there): the file `docker login`,
 * `oras login` and CI secrets already write. Credential helpers are not run.
 */
export async function loadDockerCredentials (file: string): Promise<(registry: string) => RegistryCredentials | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ValidationError('--registry-auth', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (text.length > MAX_AUTH_FILE_BYTES) throw new ValidationError('--registry-auth', `${file} is larger than ${MAX_AUTH_FILE_BYTES} bytes`)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new ValidationError('--registry-auth', `${file} is not JSON (expected a Docker config.json with "auths")`)
  }
  if (!isObject(json) || !isObject(json.auths)) throw new ValidationError('--registry-auth', `${file} has no "auths" object`)
  const byHost = new Map<string, RegistryCredentials>()
  for (const [host, entry] of Object.entries(json.auths)) {
    if (!isObject(entry)) continue
    let creds: RegistryCredentials | undefined
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon <= 0) throw new ValidationError(`--registry-auth auths.${host}.auth`, 'expected base64 of user:password')
      creds = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
    } else if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      creds = { username: entry.username, password: entry.password }
    }
    // Docker writes Docker Hub as a URL; references name it docker.io.
    const name = host.replace(/^https?:\/\//, '').replace(/\/v[12]\/?$/, '').replace(/\/$/, '')
    if (creds !== undefined) byHost.set(name === 'index.docker.io' ? 'docker.io' : name, creds)
  }
  return registry => byHost.get(registry)
}
