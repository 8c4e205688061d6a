import type { Digest } from '../../protocol/types.js'
import { compareFiles, groupCauses, type CauseGroup, type LayerDiff } from './diff.js'
import { listLayerFiles, OciArchiveError, readOciArchive, type LayerFile } from '../oci/index.js'
import { recognise } from './recognise.js'

/**
 * The file manifest of an image: per layer, every entry's path, type, mode, owner, size, mtime,
 * link target and content hash. It is what two builders exchange to find why their images
 * differ without moving a layer: a few hundred bytes per file instead of the files.
 */
export interface FileManifest {
  platform: string
  manifestDigest: Digest
  layers: Array<{ diffId: Digest, step?: string, entries: Array<Omit<LayerFile, 'order'>> }>
}

/** Reads the manifest of one platform of an OCI tarball (the first when none is named). */
export async function fileManifestOf (archive: string, platform?: string): Promise<FileManifest> {
  const info = await readOciArchive(archive)
  const image = platform == null ? info.images[0] : info.images.find(i => i.platform === platform)
  if (image == null) throw new OciArchiveError(`${archive} has no image for ${platform ?? 'any platform'}`)
  const layers: FileManifest['layers'] = []
  for (const l of image.layers) {
    const { files } = await listLayerFiles(archive, l.digest, l.mediaType)
    // Tar order is kept as the order of entries.
    const entries = [...files.values()].sort((x, y) => x.order - y.order).map(({ order: _order, ...rest }) => rest)
    layers.push({ diffId: l.diffId, ...(l.createdBy != null ? { step: l.createdBy } : {}), entries })
  }
  return { platform: image.platform, manifestDigest: image.manifestDigest, layers }
}

function filesOf (entries: FileManifest['layers'][number]['entries']): Map<string, LayerFile> {
  return new Map(entries.map((e, order) => [e.path, { ...e, order }]))
}

/** The differing layers of two manifests, their causes and the path counts. */
export interface ManifestDiff {
  layers: LayerDiff[]
  causes: CauseGroup[]
  paths: { total: number, explained: number }
}

/** Causes and path counts of `layers` as they stand (again after a cause is changed). */
export function summariseLayers (layers: LayerDiff[]): ManifestDiff {
  const total = layers.reduce((n, l) => n + l.changes.length + l.omitted, 0)
  const unknown = layers.reduce((n, l) => n + (l.causeCounts.unknown ?? 0), 0)
  return { layers, causes: groupCauses(layers), paths: { total, explained: total - unknown } }
}

/**
 * The file-level differences and their causes from two manifests alone. Without the files'
 * bytes, causes come from the kinds of change, the paths and the metadata; content that no
 * path explains is `unknown` (a local `diff` of both images says more).
 */
export function diffManifests (a: FileManifest, b: FileManifest): ManifestDiff {
  const layers: LayerDiff[] = []
  const count = Math.max(a.layers.length, b.layers.length)
  for (let i = 0; i < count; i++) {
    const la = a.layers[i]
    const lb = b.layers[i]
    if (la != null && lb != null && la.diffId === lb.diffId) continue
    const changes = compareFiles(filesOf(la?.entries ?? []), filesOf(lb?.entries ?? []))
    const causeCounts: Record<string, number> = {}
    for (const c of changes) {
      const r = recognise({ path: c.path, kinds: c.kinds, ...(c.a != null ? { a: c.a } : {}), ...(c.b != null ? { b: c.b } : {}) })
      c.cause = r.cause
      if (r.detail != null) c.detail = r.detail
      causeCounts[r.cause.id] = (causeCounts[r.cause.id] ?? 0) + 1
    }
    const step = lb?.step ?? la?.step
    layers.push({
      index: i,
      ...(step != null ? { step } : {}),
      changes,
      omitted: 0,
      causeCounts,
      verdict: changes.some(c => c.kinds.some(k => ['added', 'removed', 'content', 'type', 'link'].includes(k))) ? 'content' : 'metadata'
    })
  }
  return summariseLayers(layers)
}
