import { causeRef, type CauseId } from '../../protocol/causes.js'
import { listLayerFiles, readOciArchive } from '../oci/index.js'
import type { FileChange, LayerDiff } from './diff.js'
import { summariseLayers, type ManifestDiff } from './manifest.js'
import { recogniseOwnBytes } from './recognise.js'

export { recogniseOwnBytes }

/** Bytes of one file read for its content: enough for any text a build step stamps. */
const MAX_CAPTURE = 64 * 1024

/**
 * Gives the paths a comparison of manifests left `unknown` a cause where this side's own bytes
 * show one, reading only the differing layers of this node's kept OCI tarball; the other side's
 * image never moves. Returns the diff with causes and counts recomputed, and per cause a few
 * `path: detail` lines of what the bytes showed.
 */
export async function explainFromOwnBytes (d: ManifestDiff, archive: string, platform: string): Promise<ManifestDiff & { evidence: Map<string, string[]> }> {
  const evidence = new Map<string, string[]>()
  const info = await readOciArchive(archive)
  const image = info.images.find(i => i.platform === platform) ?? (info.images.length === 1 ? info.images[0] : undefined)
  if (image == null) return { ...d, evidence }
  // Everything is read before anything changes: a read that fails leaves `d` as it was.
  const found: Array<{ layer: LayerDiff, change: FileChange, id: CauseId, detail: string }> = []
  for (const layer of d.layers) {
    const own = image.layers[layer.index]
    const open = layer.changes.filter((c): c is FileChange & { a: NonNullable<FileChange['a']> } =>
      c.cause?.id === 'unknown' && c.kinds.includes('content') && c.a != null && c.b != null && (c.a.type === 'file' || c.a.type === 'contiguous-file'))
    if (own == null || open.length === 0) continue
    const capture = new Set(open.filter(c => c.a.size <= MAX_CAPTURE).map(c => c.path))
    const listing = await listLayerFiles(archive, own.digest, own.mediaType, { heads: true, capture, maxCapture: MAX_CAPTURE })
    for (const c of open) {
      const mine = listing.files.get(c.path)
      const head = listing.heads.get(c.path)
      // The tarball must be the image the manifest describes: same bytes for this file.
      if (mine == null || head == null || mine.sha256 !== c.a.sha256) continue
      const r = recogniseOwnBytes(c.path, head, listing.captured.get(c.path), c.a.size === c.b?.size)
      if (r != null) found.push({ layer, change: c, ...r })
    }
  }
  for (const { layer, change, id, detail } of found) {
    change.cause = causeRef(id)
    change.detail = detail
    layer.causeCounts.unknown = (layer.causeCounts.unknown ?? 1) - 1
    if (layer.causeCounts.unknown === 0) delete layer.causeCounts.unknown
    layer.causeCounts[id] = (layer.causeCounts[id] ?? 0) + 1
    const lines = evidence.get(id) ?? []
    if (lines.length < 5) lines.push(`${change.path}: ${detail}`)
    evidence.set(id, lines)
  }
  return { ...summariseLayers(d.layers), evidence }
}
