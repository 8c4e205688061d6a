/**
 * Cost of `diff` (stream both OCI tarballs, gunzip the differing layers, hash every file,
 * recognise causes) against the floor for reading the same bytes: `sha256sum` of the
 * uncompressed layer tarballs that diff compares, both sides, measured in the same run.
 * Target: ratio <= 2.
 *
 * The two images are rebuilt here from a FROM-scratch fixture: one layer of ~330 MiB of
 * deterministic incompressible data, 64 MiB of random bytes, 2,000 small text files and a
 * build date, so the layer differs on every build and most of its bytes are equal. The deeper
 * recognition has work to do: 100 one-line JSON documents of ~300 KiB with a time in
 * milliseconds (compared by keys), 100 logs whose one long line ends in an HTTP date header,
 * and a package manager's cache (npm-style index lines with times in milliseconds).
 *
 *   npm run bench:diff [-- --runs 3]
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { readOciArchive, streamBlob } from '../src/node/oci/index.js'
import { diffOciArchives } from '../src/node/compare/index.js'
import { createRebuilder } from '../src/node/rebuilder/index.js'
import { createLogger } from '../src/node/logger.js'
import { createFixtureRepo, scratchDockerfile } from '../test/helpers/fixtures.js'

// Warnings only, unless NEKO_LOG_LEVEL asks for more (info, debug).
const logger = createLogger({ defaultLevel: 'warn' })

const runs = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 3

/** Incompressible but deterministic: a SHA-256 counter stream. */
function deterministicData (seed: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes)
  for (let off = 0, i = 0; off < bytes; i++) off += createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off)
  return out
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

async function sha256sum (files: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sha256sum', files, { stdio: ['ignore', 'ignore', 'inherit'] })
    child.on('close', code => code === 0 ? resolve() : reject(new Error(`sha256sum exited with ${code}`)))
  })
}

const work = await mkdtemp(join(tmpdir(), 'bench-diff-'))
try {
  const repo = await createFixtureRepo({
    files: {
      Dockerfile: scratchDockerfile([
        'COPY seed.bin /seed.bin',
        'COPY deps.json /deps.json',
        'RUN mkdir -p /out/small /out/json /out/logs /root/.npm/_cacache/index-v5 && i=0; while [ $i -lt 40 ]; do cat /seed.bin > /out/part-$i.bin; i=$((i+1)); done; ' +
          'dd if=/dev/urandom of=/out/random.bin bs=1048576 count=64 2>/dev/null; ' +
          'i=0; while [ $i -lt 2000 ]; do echo "file $i" > /out/small/$i.txt; i=$((i+1)); done; date > /out/built; ' +
          // Times that differ past any display cut: JSON by keys, long lines whole, a cache by its path.
          'now=$(date +%s); http=$(date -u "+%a, %d %b %Y %H:%M:%S GMT"); i=0; while [ $i -lt 100 ]; do ' +
          'printf \'{"fetchedAt":%s%03d,"deps":\' "$now" "$i" > /out/json/$i.json; cat /deps.json >> /out/json/$i.json; printf \'}\' >> /out/json/$i.json; ' +
          'printf \'%s %s\\n\' "$(cat /deps.json | head -c 20000)" "$http" > /out/logs/$i.log; ' +
          'printf \'%s\\t{"key":"make-fetch-happen:request-cache:%s","time":%s%03d}\\n\' "$i" "$i" "$now" "$i" > /root/.npm/_cacache/index-v5/$i; i=$((i+1)); done'
      ], { applets: ['sh', 'date', 'echo', 'cat', 'mkdir', 'dd', 'head', 'printf'] }),
      'seed.bin': deterministicData('seed', 8 * 1024 * 1024),
      // ~300 KiB of one-line JSON: the body of each document the build stamps.
      'deps.json': JSON.stringify(Array.from({ length: 6000 }, (_, i) => ({ name: `dep-${i}`, version: `1.${i % 50}.${i}`, integrity: createHash('sha256').update(String(i)).digest('base64') })))
    },
    busybox: 'amd64',
    tag: 'v1.0.0'
  }, work)
  const rebuilder = createRebuilder({ logger }, { workDir: join(work, 'ws') })
  const archives: string[] = []
  for (const side of ['a', 'b']) {
    const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1.0.0', platform: 'linux/amd64', outDir: join(work, side) })
    if (out.claim.result == null || out.ociPath == null) throw new Error(`rebuild failed: ${JSON.stringify(out.claim.failure)}`)
    archives.push(out.ociPath)
  }
  const [a, b] = archives as [string, string]

  // The baseline's input: the uncompressed tarball of each layer diff will read, both sides.
  const [ia, ib] = await Promise.all([readOciArchive(a), readOciArchive(b)])
  const la = ia.images[0]!.layers
  const lb = ib.images[0]!.layers
  const raw: string[] = []
  for (let i = 0; i < la.length; i++) {
    if (la[i]!.diffId === lb[i]?.diffId) continue
    for (const [archive, layer, side] of [[a, la[i]!, 'a'], [b, lb[i]!, 'b']] as const) {
      const path = join(work, `layer-${i}-${side}.tar`)
      await streamBlob(archive, layer.digest, async blob => { await pipeline(blob, zlib.createGunzip(), createWriteStream(path)) })
      raw.push(path)
    }
  }
  let rawBytes = 0
  for (const p of raw) rawBytes += (await stat(p)).size

  // Warm-up (page cache for both), not timed.
  await sha256sum(raw)
  const warm = await diffOciArchives(a, b)

  const diffTimes: number[] = []
  const sumTimes: number[] = []
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['diff', 'sum'] : ['sum', 'diff']
    for (const which of order) {
      const t = performance.now()
      if (which === 'diff') await diffOciArchives(a, b)
      else await sha256sum(raw)
      ;(which === 'diff' ? diffTimes : sumTimes).push(performance.now() - t)
    }
  }
  const ratio = median(diffTimes) / median(sumTimes)
  console.log(`images: ${(await stat(a)).size / 1024 / 1024 | 0} MiB and ${(await stat(b)).size / 1024 / 1024 | 0} MiB OCI tarballs; ${warm.layers.length} differing layer(s), ${(rawBytes / 1024 / 1024).toFixed(0)} MiB uncompressed (both sides); ${warm.paths.total} differing path(s): ${warm.causes.map(g => `${g.count} ${g.cause.id}`).join(', ')}; ${runs} runs each`)
  console.log(`sha256sum of the uncompressed layers  median ${(median(sumTimes) / 1000).toFixed(2)} s  runs ${sumTimes.map(t => (t / 1000).toFixed(2)).join(' ')}`)
  console.log(`neko-rebuilder diff                   median ${(median(diffTimes) / 1000).toFixed(2)} s  runs ${diffTimes.map(t => (t / 1000).toFixed(2)).join(' ')}`)
  console.log(`ratio (diff / sha256sum): ${ratio.toFixed(3)} (target <= 2)`)
  const count = (id: string): number => warm.causes.find(g => g.cause.id === id)?.count ?? 0
  console.log(JSON.stringify({
    bench: 'diff',
    runs,
    target: 2,
    ratio: Number(ratio.toFixed(3)),
    met: ratio <= 2,
    diffSeconds: Number((median(diffTimes) / 1000).toFixed(2)),
    sha256sumSeconds: Number((median(sumTimes) / 1000).toFixed(2)),
    uncompressedMiB: Math.round(rawBytes / 1024 / 1024),
    paths: warm.paths,
    // The deeper recognition at work: stamped JSON and long lines explained, the cache by its path.
    recognised: { embeddedTimestamp: count('embedded-timestamp'), npmCache: count('npm-cache'), unknown: count('unknown') }
  }))
  process.exitCode = ratio <= 2 ? 0 : 1
} finally {
  await rm(work, { recursive: true, force: true })
}
