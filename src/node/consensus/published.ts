import { announcementTargets } from '../../protocol/announcement.js'
import { NekoError } from '../../protocol/errors.js'
import { targetKey } from '../../protocol/target.js'
import type { Digest } from '../../protocol/types.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { PublishedCheckError } from './errors.js'
import type { RegistryClient } from '../registry/types.js'


/** A release as the published-digest lookup needs it. */
export interface ReleaseRef {
  repository: string
  tag: string
  commit: string
  targets: ReadonlyArray<{ variant: string, platform: string }>
}

/**
 * `targetKey` → the per-platform manifest digest the registry publishes for the release.
 * Targets missing from the map are `unknown`: not published, not checked, or unreachable.
 */
export type PublishedLookup = (release: ReleaseRef) => Promise<ReadonlyMap<string, Digest>>

export interface PublishedLookupInit {
  /** Variant → published image repository (`ghcr.io/m1k1o/neko/base`); the tag is the release tag. */
  images: ReadonlyMap<string, string> | ((release: ReleaseRef) => Promise<ReadonlyMap<string, string>>)
  /** How long an answer (found or not) is reused, ms. Default 5 minutes; 0 disables the cache. */
  ttlMs?: number
}

/** What the lookup found for one reference and platform; `undefined` digest means unknown. */
interface Entry { at: number, digest?: Digest }

/**
 * Reads published digests through the registry client. Registry errors (unreachable, no
 * such tag, no such platform, a digest that does not verify) leave the target out, so the
 * verdict says `unknown`: a registry we cannot read says nothing about a release.
 */
export function createPublishedLookup (components: { registry: RegistryClient, logger?: ComponentLogger }, init: PublishedLookupInit): PublishedLookup {
  const log = componentLog(components.logger, 'published')
  const ttl = init.ttlMs ?? 5 * 60_000
  const cache = new Map<string, Entry>()

  async function lookup (ref: string, platform: string): Promise<Digest | undefined> {
    const key = `${ref} ${platform}`
    const hit = cache.get(key)
    if (hit !== undefined && Date.now() - hit.at < ttl) return hit.digest
    let digest: Digest | undefined
    try {
      digest = (await components.registry.resolve(ref, platform)).manifestDigest
    } catch (err) {
      if (!(err instanceof NekoError)) throw err
      log.info({ ref, platform, err: err.message }, 'published digest unknown')
    }
    if (ttl > 0) cache.set(key, digest === undefined ? { at: Date.now() } : { at: Date.now(), digest })
    return digest
  }

  return async (release) => {
    const images = typeof init.images === 'function' ? await init.images(release) : init.images
    const out = new Map<string, Digest>()
    await Promise.all(announcementTargets(release).map(async t => {
      const image = images.get(t.variant)
      if (image === undefined) return
      const digest = await lookup(`${image}:${release.tag}`, t.platform)
      if (digest !== undefined) out.set(targetKey(t), digest)
    }))
    return out
  }
}

/**
 * The published digest of every target, or a PublishedCheckError naming the first target
 * that could not be checked (a variant without an image, a registry that does not answer,
 * an image or platform it does not have). For gates (`status --registry-check`): a check
 * that was asked for and did not run must not read as `unknown` and pass.
 */
export async function checkPublished (components: { registry: RegistryClient }, images: ReadonlyMap<string, string>, release: ReleaseRef): Promise<Map<string, Digest>> {
  const out = new Map<string, Digest>()
  // Every variant needs an image before the registry is asked anything.
  for (const t of release.targets) {
    if (!images.has(t.variant)) throw new PublishedCheckError(`variant ${t.variant} has no published image (its recipe names none): pass --image ${t.variant}=REPOSITORY`)
  }
  for (const t of release.targets) {
    const ref = `${images.get(t.variant) as string}:${release.tag}`
    let digest: Digest
    try {
      digest = (await components.registry.resolve(ref, t.platform)).manifestDigest
    } catch (err) {
      if (!(err instanceof NekoError)) throw err
      throw new PublishedCheckError(`cannot check ${ref} for ${t.platform}: ${err.message}`)
    }
    out.set(targetKey({ repository: release.repository, commit: release.commit, variant: t.variant, platform: t.platform }), digest)
  }
  return out
}
