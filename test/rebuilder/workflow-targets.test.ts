import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareAnnouncement } from '../../src/node/daemon/announce.js'
import { loadRecipe, publishedTargets, RecipeError, releaseTargets } from '../../src/node/rebuilder/index.js'

/**
 * Workflows in the shape of Neko's own (.github/workflows: ghcr.yml, ghcr_nvidia.yml,
 * ghcr_intel.yml calling image_base.yml and image_app.yml on tag pushes; dockerhub.yml on
 * master), written here from the matrices of v3.1.5 and of main. Against the real trees the
 * same code counts 45 targets at v3.1.5 (395ca1a6) and 46 at main (baf21c1d): docs/recipes.md.
 */
const APPS: Array<[string, string]> = [
  ['firefox', 'linux/amd64,linux/arm64'], ['waterfox', 'linux/amd64'], ['chromium', 'linux/amd64,linux/arm64'],
  ['google-chrome', 'linux/amd64,linux/arm64'], ['ungoogled-chromium', 'linux/amd64'], ['microsoft-edge', 'linux/amd64'],
  ['brave', 'linux/amd64,linux/arm64'], ['vivaldi', 'linux/amd64,linux/arm64'], ['opera', 'linux/amd64'],
  ['tor-browser', 'linux/amd64'], ['remmina', 'linux/amd64,linux/arm64'], ['vlc', 'linux/amd64,linux/arm64'],
  ['xfce', 'linux/amd64,linux/arm64'], ['kde', 'linux/amd64,linux/arm64']
]
const NVIDIA_APPS = ['firefox', 'brave', 'chromium', 'google-chrome', 'microsoft-edge']

const callee = (what: string): string => `name: Build ${what} Image
on:
  workflow_call:
    inputs:
      name: { required: false, type: string }
      flavor: { required: false, type: string, default: "" }
      platforms: { required: false, type: string, default: "linux/amd64" }
      dockerfile: { required: false, type: string, default: "Dockerfile" }
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: docker/build-push-action@v6
        with:
          platforms: \${{ inputs.platforms || 'linux/amd64' }}
`

function release (opts: { flavor?: string, basePlatforms?: string, dockerfile?: string, apps: Array<[string, string | undefined]> }): string {
  const flavor = opts.flavor != null ? `      flavor: ${opts.flavor}\n` : ''
  const entries = opts.apps.map(([name, platforms]) => `          - name: ${name}\n${platforms != null ? `            platforms: ${platforms}\n` : ''}${opts.dockerfile != null ? `            dockerfile: ${opts.dockerfile}\n` : ''}`).join('')
  return `name: Build and Push to GHCR
on:
  push:
    tags:
      - 'v*'
jobs:
  check-latest:
    uses: ./.github/workflows/check_latest.yml
  build-base:
    needs: check-latest
    uses: ./.github/workflows/image_base.yml
    with:
${flavor}${opts.basePlatforms != null ? `      platforms: ${opts.basePlatforms}\n` : ''}      latest: \${{ needs.check-latest.outputs.is_latest == 'true' }}
    secrets: inherit
  build-app:
    uses: ./.github/workflows/image_app.yml
    needs: [build-base, check-latest]
    strategy:
      fail-fast: false
      matrix:
        include:
${entries}    with:
      name: \${{ matrix.name }}
${flavor}      platforms: \${{ matrix.platforms }}
      dockerfile: \${{ matrix.dockerfile }}
    secrets: inherit
`
}

/** Writes Neko-shaped workflows into `dir`; `googleChromeArm` is what changed between v3.1.5 and main. */
async function writeWorkflows (dir: string, googleChromeArm: boolean): Promise<void> {
  const wf = join(dir, '.github/workflows')
  await mkdir(wf, { recursive: true })
  const apps = APPS.map(([n, p]): [string, string] => [n, n === 'google-chrome' && !googleChromeArm ? 'linux/amd64' : p])
  await writeFile(join(wf, 'ghcr.yml'), release({ basePlatforms: 'linux/amd64,linux/arm64', apps }))
  await writeFile(join(wf, 'ghcr_nvidia.yml'), release({ flavor: 'nvidia', basePlatforms: 'linux/amd64', dockerfile: 'Dockerfile.nvidia', apps: NVIDIA_APPS.map(n => [n, undefined]) }))
  await writeFile(join(wf, 'ghcr_intel.yml'), release({ flavor: 'intel', basePlatforms: 'linux/amd64', apps: APPS.map(([n]) => [n, undefined]) }))
  await writeFile(join(wf, 'image_base.yml'), callee('Base'))
  await writeFile(join(wf, 'image_app.yml'), callee('App'))
  await writeFile(join(wf, 'check_latest.yml'), 'on:\n  workflow_call: {}\njobs: {}\n')
  // Published to Docker Hub from master, not by a release tag: not a release's target.
  await writeFile(join(wf, 'dockerhub.yml'), release({ basePlatforms: 'linux/amd64,linux/arm/v7', apps: [['extra-app', 'linux/amd64']] }).replace("tags:\n      - 'v*'", 'branches:\n      - master'))
}

const keys = (ts: Array<{ variant: string, platform: string }>): string[] => ts.map(t => `${t.variant} ${t.platform}`)

describe('the targets of a release follow its workflows', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'workflow-targets-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('v3.1.5 publishes 45 targets and main 46 (google-chrome on arm64), all rebuilt by the neko recipe', async () => {
    const neko = await loadRecipe('neko')
    expect(neko.targetsFrom).toBe('workflows')
    const old = join(dir, 'v3.1.5')
    const main = join(dir, 'main')
    await writeWorkflows(old, false)
    await writeWorkflows(main, true)
    const [a, b] = [await publishedTargets(old), await publishedTargets(main)]
    expect(a).toHaveLength(45)
    expect(b).toHaveLength(46)
    expect(keys(b).filter(k => !keys(a).includes(k))).toEqual(['google-chrome linux/arm64'])
    for (const k of ['waterfox linux/amd64', 'intel-waterfox linux/amd64', 'nvidia-google-chrome linux/amd64', 'base linux/arm64', 'intel linux/amd64', 'nvidia linux/amd64']) expect(keys(b)).toContain(k)
    expect(keys(b).some(k => k.startsWith('extra-app') || k.includes('arm/v7'))).toBe(false)

    // The recipe rebuilds exactly what each release publishes, in recipe order.
    const [ra, rb] = [await releaseTargets(neko, old), await releaseTargets(neko, main)]
    expect(new Set(keys(ra))).toEqual(new Set(keys(a)))
    expect(new Set(keys(rb))).toEqual(new Set(keys(b)))
    expect(keys(rb)).toEqual(neko.variants.flatMap(v => v.platforms.map(p => `${v.name} ${p}`)))
  })

  it('announce lists each tagged commit\'s own targets', async () => {
    const repo = join(dir, 'repo')
    await writeWorkflows(repo, false)
    const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.invalid', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.invalid' }
    const git = async (...args: string[]): Promise<void> => { await promisify(execFile)('git', args, { cwd: repo, env }) }
    await git('init', '--quiet', '--initial-branch=master')
    await git('add', '-A')
    await git('commit', '--quiet', '-m', 'v3.1.5')
    await git('tag', 'v3.1.5')
    await writeWorkflows(repo, true)
    await git('commit', '--quiet', '-am', 'google-chrome on arm64')
    await git('tag', 'v3.1.6')
    const old = await prepareAnnouncement({ repository: repo, tag: 'v3.1.5', recipe: 'neko' })
    const next = await prepareAnnouncement({ repository: repo, tag: 'v3.1.6', recipe: 'neko' })
    expect(old.targets).toHaveLength(45)
    expect(next.targets).toHaveLength(46)
    expect(old.recipe).toEqual(next.recipe)
    expect(keys(old.targets)).not.toContain('google-chrome linux/arm64')
    const arm = await prepareAnnouncement({ repository: repo, tag: 'v3.1.6', recipe: 'neko', platforms: ['linux/arm64'] })
    expect(keys(arm.targets)).toEqual(['base linux/arm64', 'firefox linux/arm64', 'chromium linux/arm64', 'google-chrome linux/arm64', 'brave linux/arm64', 'vivaldi linux/arm64', 'remmina linux/arm64', 'vlc linux/arm64', 'xfce linux/arm64', 'kde linux/arm64'])
  }, 60_000)

  it('refuses workflows it cannot read exactly, naming what was wrong', async () => {
    const neko = await loadRecipe('neko')
    const bad = async (name: string, edit: (text: string) => string): Promise<string> => {
      const d = join(dir, name)
      await writeWorkflows(d, true)
      const f = join(d, '.github/workflows/ghcr.yml')
      await writeFile(f, edit(await readFile(f, 'utf8')))
      return d
    }
    // A published app the recipe does not know: named, not silently dropped.
    const extra = await bad('extra', t => t.replace('          - name: kde\n', '          - name: newapp\n            platforms: linux/amd64\n          - name: kde\n'))
    await expect(releaseTargets(neko, extra)).rejects.toThrow(/publish newapp linux\/amd64, which recipe neko does not rebuild/)
    const expr = await bad('expr', t => t.replace('name: ${{ matrix.name }}', 'name: ${{ inputs.app }}'))
    await expect(publishedTargets(expr)).rejects.toThrow(/cannot evaluate \$\{\{ inputs\.app \}\}/)
    const platform = await bad('platform', t => t.replace('- name: firefox\n            platforms: linux/amd64,linux/arm64', '- name: firefox\n            platforms: linux/amd64,Not A Platform'))
    await expect(publishedTargets(platform)).rejects.toThrow(/"Not A Platform" is not a platform/)
    const big = await bad('big', t => t + `# ${'x'.repeat(300 * 1024)}\n`)
    await expect(publishedTargets(big)).rejects.toThrow(/over the limit of 262144/)
    const many = await bad('many', t => t.replace('        include:\n', `        include:\n${'          - name: firefox\n'.repeat(300)}`))
    await expect(publishedTargets(many)).rejects.toThrow(/job build-app: 314 matrix entries, over the limit of 256/)
    await mkdir(join(dir, 'none'))
    const err = await publishedTargets(join(dir, 'none')).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RecipeError)
    expect((err as Error).message).toMatch(/no \.github\/workflows/)
  })
})
