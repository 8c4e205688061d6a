import { causeRef, type CauseId } from '../../protocol/causes.js'
import { listLayerFiles, readOciArchive } from '../oci/index.js'
import type { FileChange, LayerDiff } from './diff.js'
import { summariseLayers, type ManifestDiff } from './manifest.js'
import { looksText, TEMP_PATH, TIMESTAMP } from './recognise.js'


/** Bytes of one file read for its content: enough for any text a build step stamps. */
const MAX_CAPTURE = 64 * 1024

const PYC = /(^|\/)__pycache__\/[^/]+\.pyc$|\.py[co]$/
const RANDOM_ID = /^([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\n?$/

const iso = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z')

function startsWith (head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((x, i) => head[i] === x)
}

function firstLine (text: string, re: RegExp): string | undefined {
  const line = text.split('\n').find(l => re.test(l))
  return line == null ? undefined : (line.length > 120 ? line.slice(0, 119) + '…' : line)
}

/**
 * The cause one side's bytes show for a file whose content differs, with what showed it;
 * undefined where they show nothing. Only what cannot be the same in a second build counts:
 * a gzip header that records a time or a name, a timestamp-based .pyc, a zip member's time,
 * and, in a text file of the same size on both sides, a random id or a date.
 */
export function recogniseOwnBytes (path: string, head: Buffer, content: { content: Buffer, complete: boolean } | undefined, sameSize: boolean): { id: CauseId, detail: string } | undefined {
  if (startsWith(head, [0x1f, 0x8b]) && head.length >= 10) {
    const mtime = head.readUInt32LE(4)
    const named = ((head[3] ?? 0) & 0x08) !== 0
    if (mtime !== 0) return { id: 'gzip-header', detail: `gzip header mtime ${iso(mtime)} on this side` }
    if (named) return { id: 'gzip-header', detail: 'gzip header records the file name' }
    return undefined
  }
  if (PYC.test(path) && head.length >= 16) {
    const flags = head.readUInt32LE(4)
    if (flags === 0) return { id: 'python-bytecode', detail: `timestamp-based .pyc, source mtime ${iso(head.readUInt32LE(8))} on this side` }
    return { id: 'python-bytecode', detail: `hash-based .pyc (flags ${flags}): the marshalled code differs` }
  }
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04]) && head.length >= 14) {
    const time = head.readUInt16LE(10)
    const date = head.readUInt16LE(12)
    const p = (n: number): string => String(n).padStart(2, '0')
    return { id: 'zip-times', detail: `first zip member time ${1980 + (date >> 9)}-${p((date >> 5) & 15)}-${p(date & 31)} ${p(time >> 11)}:${p((time >> 5) & 63)}:${p((time & 31) * 2)} on this side` }
  }
  // Text is judged only where both sides are the same size: a stamp replaced by another.
  if (content == null || !sameSize || !looksText(content.content)) return undefined
  const text = content.content.toString('utf8')
  if (content.complete && RANDOM_ID.test(text)) return { id: 'machine-id', detail: 'holds a random 128-bit id, as /etc/machine-id does' }
  const stamp = firstLine(text, TIMESTAMP)
  if (stamp != null) return { id: 'embedded-timestamp', detail: `holds a date or time: ${stamp}` }
  const temp = firstLine(text, TEMP_PATH)
  if (temp != null) return { id: 'embedded-path', detail: `holds a temporary path: ${temp}` }
  return undefined
}

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
