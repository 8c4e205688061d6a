import { createHash } from 'node:crypto'
import type { Claim } from '../src/protocol/types.js'

// The claims the benchmarks sign and ingest, so that every ingest figure is measured on the same input.
const hex = (s: string): string => createHash('sha256').update(s).digest('hex')

/** A realistic success claim: 12 layers, as a neko variant has. */
export function sampleClaim (i: number): Claim {
  return {
    target: { repository: 'https://github.com/m1k1o/neko', commit: hex('commit').slice(0, 40), variant: `variant-${i % 8}`, platform: i % 2 === 0 ? 'linux/amd64' : 'linux/arm64', tag: 'v3.0.0' },
    sourceDateEpoch: 1735689600,
    recipe: { name: 'neko', digest: `sha256:${hex('recipe')}` },
    environment: {
      engine: { name: 'docker', version: '26.1.5', apiVersion: '1.45' },
      buildx: '0.13.1',
      buildkit: 'v0.13.2',
      kernel: '6.1.0-28-amd64',
      arch: 'amd64',
      emulated: i % 2 === 1,
      tool: { name: 'neko-rebuilder', version: '0.1.0' }
    },
    startedOn: '2026-01-01T00:00:00Z',
    finishedOn: '2026-01-01T00:12:30Z',
    result: {
      indexDigest: `sha256:${hex(`index-${i}`)}`,
      manifestDigest: `sha256:${hex(`manifest-${i}`)}`,
      configDigest: `sha256:${hex(`config-${i}`)}`,
      diffIds: Array.from({ length: 12 }, (_, l) => `sha256:${hex(`layer-${i}-${l}`)}`),
      layerSteps: Array.from({ length: 12 }, (_, l) => `RUN step ${l} of the neko Dockerfile`)
    }
  }
}
