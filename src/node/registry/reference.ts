import { LimitError, ValidationError } from '../../protocol/errors.js'

/**
 * A parsed image reference (`[host[:port]/]path[:tag][@digest]`), following the grammar of
 * the distribution project's reference package. A small strict parser rather than an npm
 * one: the published parsers are unmaintained, and a wrong split here sends a query to
 * the wrong registry.
 */
export interface ImageReference {
  /** Registry as named (`docker.io` for Docker Hub, `ghcr.io`, `127.0.0.1:5000`). */
  registry: string
  /** Host and port the distribution API lives on (`registry-1.docker.io` for Docker Hub). */
  apiHost: string
  /** Repository path, with Docker Hub's `library/` added for one-component names. */
  repository: string
  tag?: string
  digest?: string
  /** The canonical form: `registry/repository[:tag][@digest]`. */
  canonical: string
}

export const DOCKER_HUB = 'docker.io'
const DOCKER_HUB_API = 'registry-1.docker.io'
const DEFAULT_TAG = 'latest'
const MAX_REFERENCE_LENGTH = 1024
const MAX_NAME_LENGTH = 255

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[\w][\w.-]{0,127}$/
const DOMAIN_NAME = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*$/
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/
const PORT = /^[0-9]{1,5}$/
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

/** Whether `s` is a digest this client can verify (`sha256:` or `sha512:` with lowercase hex). */
export function isDigest (s: string): boolean {
  return DIGEST.test(s)
}

function validHost (host: string): boolean {
  let name = host
  const colon = host.lastIndexOf(':')
  if (colon !== -1 && !host.endsWith(']')) {
    const port = host.slice(colon + 1)
    if (!PORT.test(port) || Number(port) > 65535) return false
    name = host.slice(0, colon)
  }
  return DOMAIN_NAME.test(name) || IPV6.test(name)
}

/** Parses `ref`; `field` names it in errors (a flag, a config key). */
export function parseReference (ref: string, field = 'reference'): ImageReference {
  if (typeof ref !== 'string' || ref.length === 0) throw new ValidationError(field, 'empty image reference')
  if (ref.length > MAX_REFERENCE_LENGTH) throw new LimitError(field, MAX_REFERENCE_LENGTH, ref.length)

  let rest = ref
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!isDigest(digest)) throw new ValidationError(field, `${JSON.stringify(ref)}: digest must be sha256:<64 hex> or sha512:<128 hex>`)
  }

  // A tag follows the last colon that comes after the last slash (a colon before it is a port).
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw new ValidationError(field, `${JSON.stringify(ref)}: invalid tag ${JSON.stringify(tag)}`)
  }

  // The first component is a registry host if it looks like one, as Docker decides it.
  let registry = DOCKER_HUB
  let path = rest
  const slash = rest.indexOf('/')
  if (slash !== -1) {
    const first = rest.slice(0, slash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!validHost(first)) throw new ValidationError(field, `${JSON.stringify(ref)}: invalid registry host ${JSON.stringify(first)}`)
      registry = first
      path = rest.slice(slash + 1)
    }
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB
  if (path.length === 0) throw new ValidationError(field, `${JSON.stringify(ref)}: missing repository name`)
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      throw new ValidationError(field, `${JSON.stringify(ref)}: invalid repository path component ${JSON.stringify(component)} (lowercase letters, digits and separators . _ __ - only)`)
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw new LimitError(`${field}.name`, MAX_NAME_LENGTH, registry.length + 1 + path.length)
  }
  if (tag == null && digest == null) tag = DEFAULT_TAG

  const canonical = `${registry}/${path}${tag != null ? `:${tag}` : ''}${digest != null ? `@${digest}` : ''}`
  const parsed: ImageReference = {
    registry,
    apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry,
    repository: path,
    canonical
  }
  if (tag != null) parsed.tag = tag
  if (digest != null) parsed.digest = digest
  return parsed
}

/** Hostname part of `host[:port]`, without IPv6 brackets. */
export function hostname (host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'))
  const colon = host.lastIndexOf(':')
  return colon === -1 ? host : host.slice(0, colon)
}

/** Loopback hosts, which Docker also talks plain HTTP to by default. */
export function isLoopbackHost (host: string): boolean {
  const name = hostname(host).toLowerCase()
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
}
