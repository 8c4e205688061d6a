export { createRegistryClient } from './client.js'
export type { PublishedImage, RegistryClient, RegistryClientInit } from './types.js'
export { parseReference, isDigest, isLoopbackHost } from './reference.js'
export type { ImageReference } from './reference.js'
export { parsePlatform, formatPlatform } from './platform.js'
export type { Platform } from './platform.js'
export {
  RegistryUnreachableError,
  ManifestNotFoundError,
  DigestMismatchError,
  RegistryAuthError,
  PlatformNotFoundError
} from './errors.js'
export { createRegistryWriter } from './writer.js'
export type { Descriptor, RawManifest, RegistryWriter, RegistryWriterInit } from './writer.js'
export type { RegistryCredentials } from './transport.js'
export { RegistryPushError } from './errors.js'
