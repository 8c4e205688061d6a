import type { Digest } from '../../protocol/types.js'
import type { RegistryAccessInit } from './transport.js'

/** What a registry publishes for one reference and platform, read without pulling layers. */
export interface PublishedImage {
  /** Canonical reference asked about (`docker.io/library/nginx:1.27`). */
  reference: string
  /** The image index (or Docker manifest list) the reference points to, when it points to one. */
  indexDigest?: Digest
  /** The per-platform image manifest. */
  manifestDigest: Digest
  configDigest: Digest
  /** `rootfs.diff_ids` of the config: uncompressed layer digests, in order. */
  diffIds: Digest[]
  /** Media type of the image manifest. */
  mediaType: string
  /** `os/arch[/variant]` of the image, from the index entry or the config. */
  platform?: string
}

export interface RegistryClientInit extends RegistryAccessInit {
  /** Largest manifest or index accepted. Default 4 MiB, the distribution registry's own limit. */
  maxManifestBytes?: number
  /** Largest image config accepted. Default 8 MiB. */
  maxConfigBytes?: number
  /** Most layers (and diff IDs) accepted in one image. Default 1000. */
  maxLayers?: number
}

export interface RegistryClient {
  /**
   * Reads the manifest (HEAD, then GET), per-platform manifest and config `ref` names; every
   * digest is checked against the bytes. `platform` is
   * `os/arch[/variant]`; it may be left out when the reference names a single image, or an
   * index with a single image in it.
   */
  resolve: (ref: string, platform?: string) => Promise<PublishedImage>
  /** The digest of what `ref` points to (index or manifest): by a HEAD request, or a verified GET where HEAD gives none. */
  manifestDigest: (ref: string) => Promise<Digest>
}
