import type { OciImage } from '../oci/index.js'

/** What an image says about the source and clock it was built from. */
export interface Origin {
  /** The config's `created` (with SOURCE_DATE_EPOCH, BuildKit sets it to that time). */
  created?: string
  /** SOURCE_DATE_EPOCH, from a build argument recorded in the history, else from `created`. */
  epoch?: number
  /** Commit, from the `org.opencontainers.image.revision` label. */
  revision?: string
  /** Source, from the `org.opencontainers.image.source` label. */
  source?: string
}

const REVISION = 'org.opencontainers.image.revision'
const SOURCE = 'org.opencontainers.image.source'

export function originOf (image: OciImage): Origin {
  const cfg = image.config
  const out: Origin = {}
  if (typeof cfg.created === 'string') out.created = cfg.created
  const labels = ((cfg.config as { Labels?: Record<string, unknown> } | undefined)?.Labels) ?? {}
  if (typeof labels[REVISION] === 'string') out.revision = labels[REVISION]
  if (typeof labels[SOURCE] === 'string') out.source = labels[SOURCE]
  const history = Array.isArray(cfg.history) ? cfg.history as Array<{ created_by?: unknown }> : []
  for (const h of history) {
    // BuildKit records the build arguments a RUN used: `RUN |2 A=x SOURCE_DATE_EPOCH=1700000000 /bin/sh -c ...`.
    const m = typeof h.created_by === 'string' ? /(?:^|\s)SOURCE_DATE_EPOCH=(\d+)(?:\s|$)/.exec(h.created_by) : null
    if (m?.[1] != null) { out.epoch = Number(m[1]); break }
  }
  if (out.epoch == null && out.created != null) {
    const t = Date.parse(out.created)
    if (Number.isFinite(t) && t % 1000 === 0) out.epoch = t / 1000
  }
  return out
}

/** Both origins, and in words what differs: different commits or clocks explain everything else. */
export function originsOf (a: OciImage, b: OciImage): { a: Origin, b: Origin, differences: string[] } {
  const oa = originOf(a)
  const ob = originOf(b)
  const differences: string[] = []
  if (oa.revision != null && ob.revision != null && oa.revision !== ob.revision) differences.push(`different commits: ${oa.revision} vs ${ob.revision}`)
  if (oa.source != null && ob.source != null && oa.source !== ob.source) differences.push(`different sources: ${oa.source} vs ${ob.source}`)
  if (oa.epoch != null && ob.epoch != null && oa.epoch !== ob.epoch) differences.push(`different SOURCE_DATE_EPOCH: ${oa.epoch} vs ${ob.epoch}`)
  return { a: oa, b: ob, differences }
}
