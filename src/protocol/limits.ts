/**
 * Limits on every size and count that can arrive from the network or a file. They are
 * checked before any expensive work (signature verification, JSON parsing) so a peer cannot
 * make a node spend memory or CPU out of proportion to a valid message.
 * Sizes are in bytes unless named otherwise; string lengths count UTF-16 code units as
 * JavaScript does (free-form fields such as repositories may hold any Unicode).
 */
export const LIMITS = {
  /**
   * One DSSE envelope as JSON text. A claim of 512 layers fits with short steps; producers
   * shorten long `created_by` steps so that a claim stays under it (signClaim refuses otherwise).
   */
  envelopeBytes: 256 * 1024,
  /** The decoded DSSE payload (the in-toto Statement JSON); its base64 plus signatures fits `envelopeBytes`. */
  payloadBytes: 188 * 1024,
  /** The DSSE payloadType string. */
  payloadTypeLength: 128,
  /** Signatures per envelope: messages are single-signer; a few leave room for co-signing. */
  signaturesPerEnvelope: 4,
  /** A signature's `keyid` hint. */
  keyIdLength: 128,
  /** A base64 signature (an Ed25519 signature is 88 characters). */
  signatureLength: 256,
  /** A base64 embedded public key (an Ed25519 SPKI DER is 60 characters). */
  embeddedKeyLength: 256,
  /** Layers per image (`rootfs.diff_ids`); Docker itself refuses more than 127 on overlayfs. */
  layersPerImage: 512,
  /** Repository URL or path. */
  repositoryLength: 512,
  /** Git tag. */
  tagLength: 256,
  /** Variant name (`base`, `nvidia-firefox`). */
  variantLength: 128,
  /** OCI platform (`linux/arm64/v8`). */
  platformLength: 64,
  /** Recipe name. */
  recipeNameLength: 128,
  /** Tail of a build log carried in a failure claim. */
  logExcerptLength: 4 * 1024,
  /** Failure message. */
  failureMessageLength: 1024,
  /** A Dockerfile step (`created_by`, failing step). */
  stepLength: 1024,
  /** Any short free-form string (versions, kernel, names, operators). */
  shortStringLength: 256,
  /** Targets (variant × platform) in one announcement. */
  targetsPerAnnouncement: 256,
  /** One JSON Lines bundle line (one envelope plus slack for whitespace). */
  bundleLineLength: 256 * 1024 + 1024,
  /** Lines in one bundle. */
  bundleLines: 100_000,
  /** `from` bases one claim names (resolvedDependencies after the source). */
  basesPerClaim: 16,
  /** Entries in a trust policy's builder or announcer list. */
  policyKeys: 1024
} as const
