import type { Digest, ImageResult } from './types.js'

/**
 * Where two image results for the same target first part ways. Pure: used by the consensus
 * service, `status` and the dashboard to point a maintainer at the Dockerfile step to fix.
 */

/**
 * - `layer`: the layer at `index` differs.
 * - `layer-count`: one image has every layer of the other and more; `index` is the first extra one.
 * - `config`: same layers, different image config (labels, env, history timestamps).
 * - `manifest`: same config, different manifest (layer compression or annotations).
 * - `index`: same manifest, different index (annotations, attestation manifests).
 */
export type DivergenceKind = 'layer' | 'layer-count' | 'config' | 'manifest' | 'index'

export interface Divergence {
  kind: DivergenceKind
  /** 0-based position in `diffIds`; set for `layer` and `layer-count`. */
  index?: number
  /** Layer diffID of the reference (the consensus) at `index`; absent when the reference has fewer layers. */
  expected?: Digest
  /** Layer diffID of the candidate at `index`; absent when the candidate has fewer layers. */
  actual?: Digest
  /**
   * The Dockerfile step (`created_by`) that made the layer at `index`, from whichever side
   * records it (the reference first: the consensus is the better guide to the source).
   */
  step?: string
  /** The candidate's own `created_by` at `index`, when it differs from `step`. */
  actualStep?: string
}

/**
 * The first point where `actual` differs from `expected`, or `undefined` when both name the
 * same image. Layers are compared in order because a layer's content depends on every layer
 * before it: only the first difference says which step to look at.
 */
export function firstDivergence (expected: ImageResult, actual: ImageResult): Divergence | undefined {
  const a = expected.diffIds
  const b = actual.diffIds
  const shared = Math.min(a.length, b.length)
  for (let i = 0; i < shared; i++) {
    if (a[i] !== b[i]) return layerDivergence('layer', i, expected, actual)
  }
  if (a.length !== b.length) return layerDivergence('layer-count', shared, expected, actual)
  if (expected.configDigest !== actual.configDigest) return { kind: 'config' }
  if (expected.manifestDigest !== actual.manifestDigest) return { kind: 'manifest' }
  if (expected.indexDigest !== actual.indexDigest) return { kind: 'index' }
  return undefined
}

function layerDivergence (kind: DivergenceKind, index: number, expected: ImageResult, actual: ImageResult): Divergence {
  const out: Divergence = { kind, index }
  const exp = expected.diffIds[index]
  const act = actual.diffIds[index]
  if (exp !== undefined) out.expected = exp
  if (act !== undefined) out.actual = act
  const expStep = expected.layerSteps?.[index]
  const actStep = actual.layerSteps?.[index]
  const step = expStep ?? actStep
  if (step !== undefined) out.step = step
  if (actStep !== undefined && actStep !== step) out.actualStep = actStep
  return out
}

/** One line for terminals and feeds: `layer 3 (RUN apt-get install …): sha256:ab… ≠ sha256:cd…`. */
export function describeDivergence (d: Divergence): string {
  const short = (x: string | undefined): string => x === undefined ? '(none)' : x.slice(0, 19)
  switch (d.kind) {
    case 'layer':
    case 'layer-count': {
      const step = d.step !== undefined ? ` (${d.step})` : ''
      const what = d.kind === 'layer' ? 'layer' : 'extra layer'
      return `${what} ${d.index ?? 0}${step}: ${short(d.expected)} vs ${short(d.actual)}`
    }
    case 'config': return 'same layers, different image config'
    case 'manifest': return 'same config, different manifest'
    case 'index': return 'same manifest, different index'
  }
}
