/**
 * What keeping builds of one target on one engine apart costs. Three rebuilders rebuild a
 * release that writes the date and random bytes into its image:
 *   - concurrently, as three nodes on one engine do (the engine lock makes them take turns);
 *   - one after the other (the baseline: three independent builds, nothing shared);
 * and, for reference, three bare concurrent `docker buildx build`s, which BuildKit merges
 * into one build (one digest between them: the false agreement the lock prevents).
 * Prints wall times, distinct digests and the ratio concurrent / one after the other.
 *
 *   npm run bench:independent [-- --runs 2]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bare } from './bare-build.js'
import { readOciArchive } from '../src/node/oci/index.js'
import { buildxArgs, checkout, createRebuilder, type Rebuilder } from '../src/node/rebuilder/index.js'
import { createFixtureProject } from '../src/node/devnet/fixture-project.js'
import { createLogger } from '../src/node/logger.js'
import { busyboxPath } from '../test/helpers/fixtures.js'

// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug).
const logger = createLogger({ defaultLevel: 'warn' })

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 2


const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const work = await mkdtemp(join(tmpdir(), 'bench-independent-'))
try {
  const project = await createFixtureProject({ dir: join(work, 'project'), nondeterministicWith: busyboxPath('amd64') })
  const rebuilders: Rebuilder[] = [1, 2, 3].map(i => createRebuilder({ logger }, { workDir: join(work, `ws-${i}`) }))
  const one = async (r: Rebuilder): Promise<string> => {
    const out = await r.rebuild({ repository: project.repository, ref: project.tag, platform: 'linux/amd64' })
    if (out.claim.result == null) throw new Error(`rebuild failed: ${JSON.stringify(out.claim.failure)}`)
    return out.claim.result.manifestDigest
  }
  await one(rebuilders[0]!) // warm-up: engine check, page cache
  const concurrent: number[] = []
  const sequential: number[] = []
  const merged: number[] = []
  const digests = { concurrent: 0, sequential: 0, merged: 0 }
  for (let i = 0; i < runs; i++) {
    let t = performance.now()
    digests.concurrent = new Set(await Promise.all(rebuilders.map(one))).size
    concurrent.push(performance.now() - t)
    t = performance.now()
    const seq: string[] = []
    for (const r of rebuilders) seq.push(await one(r))
    sequential.push(performance.now() - t)
    digests.sequential = new Set(seq).size

    const srcs = await Promise.all([1, 2, 3].map(async j => {
      const src = join(work, `bare-${i}-${j}`)
      const { commitTime } = await checkout(project.repository, project.tag, src)
      return { src, commitTime, tar: join(src, 'out.oci.tar') }
    }))
    t = performance.now()
    await Promise.all(srcs.map(async s => { await bare(buildxArgs({ platform: 'linux/amd64', epoch: s.commitTime, tarPath: s.tar, dockerfile: join(s.src, 'Dockerfile'), context: s.src }), s.src, s.commitTime) }))
    merged.push(performance.now() - t)
    digests.merged = new Set(await Promise.all(srcs.map(async s => { await readFile(s.tar); return (await readOciArchive(s.tar)).images[0]!.manifestDigest }))).size
    for (const s of srcs) await rm(s.src, { recursive: true, force: true })
  }
  const fmt = (xs: number[]): string => `median ${(median(xs) / 1000).toFixed(2)} s  runs ${xs.map(x => (x / 1000).toFixed(2)).join(' ')}`
  console.log(`three rebuilds of a nondeterministic release on one engine; ${runs} runs each`)
  console.log(`one after the other (baseline)   ${fmt(sequential)}  distinct digests ${digests.sequential}`)
  console.log(`concurrent, engine lock          ${fmt(concurrent)}  distinct digests ${digests.concurrent}`)
  console.log(`bare concurrent buildx (merged)  ${fmt(merged)}  distinct digests ${digests.merged}`)
  console.log(`ratio concurrent with lock / one after the other: ${(median(concurrent) / median(sequential)).toFixed(3)}`)
} finally {
  await rm(work, { recursive: true, force: true })
}
