import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signClaim } from '../../src/protocol/messages.js'
import { engineAvailable } from '../helpers/engine.js'
import { createFixtureRepo, scratchDockerfile, type FixtureRepo } from '../helpers/fixtures.js'

const available = engineAvailable('build: one base per release')
/** Builds share two cores with the rest of the suite: allow for a loaded machine. */
const ENGINE_TEST_TIMEOUT = 300_000
const PLATFORM = 'linux/amd64'

/** The docker CLI, wrapped to write one line per image build it starts: the engine builds counted. */
async function countingCli (dir: string): Promise<{ cli: string, builds: () => Promise<string[]> }> {
  const log = join(dir, 'builds.log')
  const cli = join(dir, 'docker')
  await writeFile(log, '')
  await writeFile(cli, `#!/bin/sh\nif [ "$1" = buildx ] && [ "$2" = build ]; then echo "$*" >> '${log}'; fi\nexec docker "$@"\n`)
  await chmod(cli, 0o755)
  return { cli, builds: async () => (await readFile(log, 'utf8')).split('\n').filter(l => l !== '') }
}

describe.skipIf(!available)('one base per release, through the real engine', () => {
  let work: string
  let repo: FixtureRepo
  const identity = generateIdentity()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'neko-bases-test-'))
    const recipe = {
      name: 'baseapps',
      variants: [
        { name: 'base', platforms: [PLATFORM], build: { context: '.', dockerfile: 'Dockerfile' } },
        { name: 'app1', platforms: [PLATFORM], build: { context: 'apps/app1', dockerfile: 'apps/app1/Dockerfile' }, from: { BASE_IMAGE: 'base' } },
        { name: 'app2', platforms: [PLATFORM], build: { context: 'apps/app2', dockerfile: 'apps/app2/Dockerfile' }, from: { BASE_IMAGE: 'base' } }
      ]
    }
    const app = (name: string): string => `ARG BASE_IMAGE=registry.example/baseapps/base:latest\nFROM $BASE_IMAGE\nRUN echo ${name} > /${name}\n`
    repo = await createFixtureRepo({
      files: {
        'neko-rebuilder.json': JSON.stringify(recipe),
        Dockerfile: scratchDockerfile(['RUN echo base > /base']),
        'apps/app1/Dockerfile': app('app1'),
        'apps/app2/Dockerfile': app('app2')
      },
      busybox: 'amd64',
      tag: 'v1.0.0'
    }, work)
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('builds the base once for the release, every app on it; the app claims name it and their digests are those of a rebuild of each alone', async () => {
    const counted = await countingCli(work)
    const rebuilder = createRebuilder({}, { workDir: join(work, 'shared'), dockerCli: counted.cli })
    const req = (variant: string): Parameters<typeof rebuilder.rebuild>[0] => ({ repository: repo.dir, ref: 'v1.0.0', variant, platform: PLATFORM })

    // Both apps at once: one of them builds the base, the other waits for it.
    const [app1, app2] = await Promise.all([rebuilder.rebuild(req('app1')), rebuilder.rebuild(req('app2'))])
    // The base's own target after them: the very base they were built on, not built again.
    const base = await rebuilder.rebuild(req('base'))
    for (const out of [app1, app2, base]) expect(out.claim.failure, JSON.stringify(out.claim.failure)).toBeUndefined()
    const builds = await counted.builds()
    expect(builds).toHaveLength(3)
    expect(builds.filter(b => b.includes('apps/app1'))).toHaveLength(1)
    expect(builds.filter(b => b.includes('apps/app2'))).toHaveLength(1)

    const baseDigest = base.claim.result?.manifestDigest
    expect(baseDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(base.claim.bases).toBeUndefined()
    for (const app of [app1, app2]) {
      expect(app.claim.bases).toEqual([{ variant: 'base', manifestDigest: baseDigest }])
      // The chain survives signing: a verifier reads it from the claim.
      const decoded = decodeMessage(signClaim(app.claim, identity), { allowEmbeddedKeys: true })
      expect(decoded.kind === 'claim' ? decoded.claim.bases : undefined).toEqual([{ variant: 'base', manifestDigest: baseDigest }])
      expect(app.claim.result?.diffIds.slice(0, -1)).toEqual(base.claim.result?.diffIds)
    }

    // Each app rebuilt alone on an engine that built nothing before: its own base inside its rebuild.
    const alone = await countingCli(await mkdtemp(join(work, 'alone-')))
    for (const [variant, shared] of [['app1', app1], ['app2', app2]] as const) {
      const fresh = createRebuilder({}, { workDir: await mkdtemp(join(work, 'fresh-')), dockerCli: alone.cli })
      const out = await fresh.rebuild(req(variant))
      expect(out.claim.failure, JSON.stringify(out.claim.failure)).toBeUndefined()
      expect(out.claim.result).toEqual(shared.claim.result)
      expect(out.claim.bases).toEqual([{ variant: 'base', manifestDigest: baseDigest }])
    }
    expect(await alone.builds()).toHaveLength(4)
    // No workspace is left; the bases are kept (bounded) for the next app.
    const left = await readdir(join(work, 'shared'))
    expect(left.filter(n => n.startsWith('rebuild-'))).toEqual([])
    expect(left.filter(n => n.startsWith('bases-'))).toHaveLength(1)
  }, ENGINE_TEST_TIMEOUT)
})
