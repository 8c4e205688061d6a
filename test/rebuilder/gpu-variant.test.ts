import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createFixtureProject, type FixtureProject } from '../../src/node/devnet/fixture-project.js'
import { createRebuilder, parseRecipe } from '../../src/node/rebuilder/index.js'
import { engineAvailable } from '../helpers/engine.js'

const available = engineAvailable('build: a GPU variant on an engine without a GPU')

describe.skipIf(!available)('a variant whose image needs an NVIDIA GPU', () => {
  let work: string
  let project: FixtureProject
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'gpu-variant-'))
    project = await createFixtureProject({ dir: join(work, 'project') })
  })
  afterAll(async () => { await rm(work, { recursive: true, force: true }) })

  it('is rebuilt on an engine with no NVIDIA runtime, to the same digest as without the flag', async () => {
    const rebuilder = createRebuilder({}, { workDir: join(work, 'ws') })
    const caps = await rebuilder.capabilities()
    // This machine has no GPU; were one present, the test would show nothing.
    expect(caps.nvidia).toBe(false)
    const recipe = parseRecipe({
      name: 'gpu-fixture',
      variants: [
        { name: 'nvidia', platforms: ['linux/amd64'], requires: { nvidia: true }, build: { context: '.', dockerfile: 'Dockerfile' } },
        { name: 'plain', platforms: ['linux/amd64'], build: { context: '.', dockerfile: 'Dockerfile' } }
      ]
    })
    const gpu = await rebuilder.rebuild({ repository: project.repository, ref: project.tag, platform: 'linux/amd64', recipe, variant: 'nvidia' })
    expect(gpu.claim.failure).toBeUndefined()
    expect(gpu.claim.target.variant).toBe('nvidia')
    const plain = await rebuilder.rebuild({ repository: project.repository, ref: project.tag, platform: 'linux/amd64', recipe, variant: 'plain' })
    expect(gpu.claim.result?.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(gpu.claim.result?.manifestDigest).toBe(plain.claim.result?.manifestDigest)
  }, 180_000)
})
