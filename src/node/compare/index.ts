/**
 * Comparing two images of one target: which files differ, what caused each difference
 * (recognisers, package drift, origins, the image's own bytes) and the Dockerfile fixes that
 * remove it. Reads archives through src/node/oci; knows nothing of the build engine.
 */
export { DEFAULT_MAX_PATHS, diffOciArchives, groupCauses, limitListed, VERDICT_TEXT } from './diff.js'
export type { ImageDiff, LayerDiff, FileChange, DiffVerdict, CauseGroup, ChangeKind, DiffOptions } from './diff.js'
export { looksText, TEMP_PATH, TIMESTAMP } from './recognise.js'
export { textDiff } from './text-diff.js'
export { packageDrift, parseDpkgStatus } from './dpkg.js'
export type { PackageChange } from './dpkg.js'
export { applyFixes } from './apply-fixes.js'
export type { FixResult, AppliedFix } from './apply-fixes.js'
export { fileManifestOf, diffManifests, summariseLayers } from './manifest.js'
export type { FileManifest, ManifestDiff } from './manifest.js'
export { explainFromOwnBytes, recogniseOwnBytes } from './own-bytes.js'
