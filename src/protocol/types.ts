/**
 * The data model every part shares. Wire encodings (in-toto Statement v1 in DSSE)
 * live in the message modules; these are the decoded, validated shapes.
 */

/** `sha256:<64 hex>` */
export type Digest = string

/** Media type of every DSSE payload this project signs. */
export const PAYLOAD_TYPE = 'application/vnd.in-toto+json'
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1'
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1'
export const SLSA_VSA_V1 = 'https://slsa.dev/verification_summary/v1'
/** Project-owned type URIs. Versioned: a change of meaning gets a new URI. */
export const ANNOUNCEMENT_PREDICATE = 'https://neko-rebuilder.github.io/announcement/v1'
export const FAILURE_PREDICATE = 'https://neko-rebuilder.github.io/rebuild-failure/v1'
export const REBUILD_BUILD_TYPE = 'https://neko-rebuilder.github.io/rebuild/v1'

/** What is rebuilt: one variant and one platform of one commit. The tag is an alias, not part of identity. */
export interface Target {
  repository: string
  commit: string
  variant: string
  /** OCI platform, e.g. `linux/amd64`, `linux/arm64`. */
  platform: string
  tag?: string
}

export interface RecipeRef {
  name: string
  digest: Digest
}

export interface Announcement {
  repository: string
  tag: string
  commit: string
  recipe: RecipeRef
  targets: Array<{ variant: string, platform: string }>
  /** RFC 3339 */
  announcedAt: string
}

export interface BuildEnvironment {
  /**
   * `id` is the engine's own identifier (`docker info` ID): builds on one engine share
   * BuildKit's in-flight steps, so the quorum counts them as one witness.
   */
  engine: { name: 'docker', version: string, apiVersion?: string, id?: string }
  buildx: string
  buildkit: string
  /** The BuildKit worker that ran the build (see docs/protocol.md). */
  buildkitWorker?: string
  kernel: string
  /** Host architecture in OCI terms (`amd64`, `arm64`). */
  arch: string
  /** True when the target platform ran under binfmt emulation. */
  emulated: boolean
  /** The rebuilder's own name and version. */
  tool: { name: string, version: string }
}

/** Digests read from the exported OCI layout. */
export interface ImageResult {
  indexDigest: Digest
  manifestDigest: Digest
  configDigest: Digest
  /** Uncompressed layer digests, in order (`rootfs.diff_ids`). */
  diffIds: Digest[]
  /** `created_by` of each non-empty history entry, aligned with `diffIds`. */
  layerSteps?: string[]
}

export type FailureClass = 'source-error' | 'build-failed' | 'timeout' | 'infrastructure-error'

export interface Failure {
  class: FailureClass
  message: string
  /** The Dockerfile step that failed, when known (`RUN make`). */
  step?: string
  /** A short tail of the build log. */
  logExcerpt?: string
}

/** What every claim says, whatever the rebuild's outcome. */
export interface ClaimBase {
  target: Target
  sourceDateEpoch: number
  recipe: RecipeRef
  environment: BuildEnvironment
  startedOn: string
  finishedOn: string
  /**
   * The `from` bases this image was built on (success claims only), by the manifest digest of
   * the base this node built from the same commit for the same platform: the chain a verifier
   * follows from an app to its base's own claim. Absent in claims of images with no base, and
   * in claims made before bases were recorded.
   */
  bases?: BaseRef[]
}

/** A rebuild that produced an image. */
export interface SuccessClaim extends ClaimBase {
  result: ImageResult
  failure?: undefined
}

/** A base image an app was built on: its variant (same repository, commit and platform) and manifest. */
export interface BaseRef {
  variant: string
  manifestDigest: Digest
}

/** A rebuild that did not produce an image, and why. */
export interface FailureClaim extends ClaimBase {
  failure: Failure
  result?: undefined
}

/**
 * A signed rebuild result: either `result` (success) or `failure`, never both. The wire form
 * is the same object; the union only lets the compiler tell the two apart.
 */
export type Claim = SuccessClaim | FailureClaim

export type VerdictStatus = 'reproducible' | 'unreproducible' | 'disputed' | 'pending' | 'unsettled' | 'failed'
export type PublishedMatch = 'yes' | 'no' | 'unknown'
