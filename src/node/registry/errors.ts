import { NekoError } from '../../protocol/errors.js'

/**
 * Errors of the registry client. Every message names the image reference, so a status
 * line can print it as is. Callers map unreachable and not-found to `unknown`, never to
 * a verdict: a registry we cannot read says nothing about a release.
 */

/** The registry did not answer: connection refused, DNS failure, timeout, TLS failure, or a 5xx/429. */
export class RegistryUnreachableError extends NekoError {
  override name = 'RegistryUnreachableError'
  override readonly code = 'ERR_REGISTRY_UNREACHABLE'
  constructor (readonly reference: string, reason: string, options?: ErrorOptions) {
    super(`${reference}: registry unreachable: ${reason}`, options)
  }
}

/** The registry answered but knows no such tag, digest or repository. */
export class ManifestNotFoundError extends NekoError {
  override name = 'ManifestNotFoundError'
  override readonly code = 'ERR_MANIFEST_NOT_FOUND'
  constructor (readonly reference: string, reason = 'manifest unknown') {
    super(`${reference}: ${reason}`)
  }
}

/** Bytes from the registry do not hash to the digest they were asked for or announced with. */
export class DigestMismatchError extends NekoError {
  override name = 'DigestMismatchError'
  override readonly code = 'ERR_DIGEST_MISMATCH'
  constructor (readonly reference: string, readonly what: string, readonly expected: string, readonly actual: string) {
    super(`${reference}: ${what} digest mismatch: expected ${expected}, got ${actual}`)
  }
}

/** The registry wants credentials this client does not have (only anonymous bearer tokens are supported), or refused the token. */
export class RegistryAuthError extends NekoError {
  override name = 'RegistryAuthError'
  override readonly code = 'ERR_REGISTRY_AUTH'
  constructor (readonly reference: string, reason: string) {
    super(`${reference}: registry authentication failed: ${reason}`)
  }
}

/** The image index has no manifest for the requested platform. */
export class PlatformNotFoundError extends NekoError {
  override name = 'PlatformNotFoundError'
  override readonly code = 'ERR_PLATFORM_NOT_FOUND'
  constructor (readonly reference: string, readonly platform: string, readonly available: string[]) {
    super(`${reference}: no manifest for platform ${platform} (available: ${available.length > 0 ? available.join(', ') : 'none'})`)
  }
}

/** The registry refused to store a blob or manifest (HTTP 4xx other than authentication). */
export class RegistryPushError extends NekoError {
  override name = 'RegistryPushError'
  override readonly code = 'ERR_REGISTRY_PUSH'
  constructor (readonly reference: string, reason: string) {
    super(`${reference}: the registry refused the push: ${reason}`)
  }
}
