import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { diffOciArchives, type ImageDiff } from '../../src/node/compare/index.js'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { engineAvailable } from '../helpers/engine.js'
import { createFixtureRepo } from '../helpers/fixtures.js'

/**
 * A small Debian image that is nondeterministic in several known ways at once, rebuilt twice
 * through the real engine: `diff` must name each cause. The base is made locally with
 * mmdebstrap (no registry is reachable here; Debian's mirror is) and reused across runs.
 */
const BASE_EPOCH = '1735689600'
const BASE = `neko-rebuilder-test/trixie-minbase:${BASE_EPOCH}`

function mmdebstrapAvailable (): boolean {
  const ok = existsSync('/usr/bin/mmdebstrap')
  if (!ok) {
    if (process.env.NEKO_REQUIRE_ENGINE === '1') throw new Error('causes (Debian): NEKO_REQUIRE_ENGINE=1 but mmdebstrap is missing (scripts/setup-host.sh installs it)')
    process.stderr.write('[skip] causes (Debian): no mmdebstrap; run scripts/setup-host.sh\n')
  }
  return ok
}

const available = engineAvailable('causes (Debian)') && mmdebstrapAvailable()
/** The base (once per machine) and two builds that download a few MiB from Debian's mirror; several minutes, longer on a loaded machine. */
const TIMEOUT = 900_000

const DOCKERFILE = `ARG BASE_IMAGE
FROM $BASE_IMAGE
RUN set -eux; \\
    apt-get update; \\
    apt-get install -y --no-install-recommends dbus fontconfig fonts-dejavu-core python3-minimal; \\
    rm -rf /var/lib/apt/lists/*; \\
    mkdir -p /opt/app; \\
    echo 'print(1)' > /opt/app/m.py; \\
    python3 -m py_compile /opt/app/m.py; \\
    echo notes > /opt/app/notes; \\
    gzip /opt/app/notes
`

describe.skipIf(!available)('diff names the causes of a nondeterministic Debian image (real engine)', () => {
  let work: string
  let d: ImageDiff
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'causes-debian-'))
    if (spawnSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' }).status !== 0) {
      const tarball = join(work, 'base.tar')
      execFileSync('mmdebstrap', ['--quiet', '--variant=minbase', 'trixie', tarball], { env: { ...process.env, SOURCE_DATE_EPOCH: BASE_EPOCH }, stdio: ['ignore', 'ignore', 'pipe'], timeout: TIMEOUT })
      execFileSync('docker', ['import', tarball, BASE], { stdio: 'ignore' })
    }
    const repo = await createFixtureRepo({
      files: {
        Dockerfile: DOCKERFILE,
        'neko-rebuilder.json': JSON.stringify({ name: 'causes', variants: [{ name: 'default', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile', args: { BASE_IMAGE: BASE } } }] })
      },
      tag: 'v1'
    }, work)
    const rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    const paths: string[] = []
    for (const side of ['a', 'b']) {
      const out = await rebuilder.rebuild({ repository: repo.dir, ref: 'v1', platform: 'linux/amd64', outDir: join(work, side) })
      expect(out.claim.failure, JSON.stringify(out.claim.failure)).toBeUndefined()
      paths.push(out.ociPath!)
    }
    d = await diffOciArchives(paths[0]!, paths[1]!)
  }, TIMEOUT)
  afterAll(async () => { if (work != null) await rm(work, { recursive: true, force: true }) })

  it('finds the layer of the RUN step and a specific cause for at least 90% of its paths', () => {
    expect(d.identical).toBe(false)
    expect(d.layers.map(l => l.index)).toEqual([1])
    expect(d.layers[0]!.step).toContain('apt-get install')
    expect(d.paths.explained / d.paths.total).toBeGreaterThanOrEqual(0.9)
  })

  it('names each cause the Dockerfile plants, with evidence', () => {
    const ids = new Set(d.causes.map(g => g.cause.id))
    for (const id of ['machine-id', 'package-logs', 'ldconfig-aux-cache', 'fontconfig-cache', 'python-bytecode', 'gzip-header']) expect(ids, `${id} in ${[...ids].join(', ')}`).toContain(id)
    const changes = new Map(d.layers[0]!.changes.map(c => [c.path, c]))
    expect(changes.get('opt/app/notes.gz')?.detail).toMatch(/^gzip header mtime \S+ vs \S+/)
    expect(changes.get('opt/app/__pycache__/m.cpython-313.pyc')?.detail).toMatch(/^timestamp-based \.pyc, source mtime/)
    expect(changes.get('var/log/dpkg.log')?.diff).toMatch(/^-\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /m)
  })
})
