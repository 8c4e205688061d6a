import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as api from '../../src/protocol/index.js'
import { announcement, digestOf, successClaim } from './fixtures.js'

const exec = promisify(execFile)

/** execFile whose error carries the command's output (tsc reports on stdout). */
async function run (file: string, args: string[], opts: { cwd?: string } = {}): Promise<{ stdout: string, stderr: string }> {
  try {
    return await exec(file, args, opts)
  } catch (err) {
    const e = err as Error & { stdout?: string, stderr?: string }
    throw new Error(`${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err })
  }
}
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..')
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const doc = readFileSync(join(ROOT, 'docs/protocol-api.md'), 'utf8')

function example (marker: string): string {
  const at = doc.indexOf(`<!-- example:${marker} -->`)
  expect(at, marker).toBeGreaterThan(0)
  return /```js\n([^]*?)\n```/.exec(doc.slice(at))?.[1] as string
}

/** Signs a release through the package, as a producer other than a node would. */
const SIGN = `
import { readFile, writeFile } from 'node:fs/promises'
import { generateIdentity, serializeBundle, signAnnouncement, signClaim } from 'neko-rebuilder/protocol'

const input = JSON.parse(await readFile('input.json', 'utf8'))
const announcer = generateIdentity()
const builders = [generateIdentity(), generateIdentity(), generateIdentity()]
const stranger = generateIdentity()
const envelopes = [
  signAnnouncement(input.announcement, announcer),
  signClaim(input.claim, builders[0]),
  signClaim(input.claim, builders[1]),
  signClaim(input.other, stranger)
]
await writeFile('release.jsonl', serializeBundle(envelopes) + '{"not": "an envelope"}\\n')
await writeFile('trust.json', JSON.stringify({
  version: 1,
  builders: builders.map((b, i) => ({ name: 'builder-' + i, operator: 'operator-' + i, publicKey: b.publicKeyPem })),
  announcers: [{ name: 'release', publicKey: announcer.publicKeyPem }],
  threshold: 2,
  minOperators: 2,
  allowedDissent: 0
}))
`

/** Uses the published types: fails to compile if the `types` condition or a type is missing. */
const TYPED = `
import { computeVerdicts, decodeMessage, LIMITS, WIRE, type DecodedMessage, type TargetVerdict, type TrustPolicy } from 'neko-rebuilder/protocol'

export function verdictsOf (policy: TrustPolicy, envelopes: unknown[]): TargetVerdict[] {
  const messages: DecodedMessage[] = envelopes.map(e => decodeMessage(e, { keys: policy.builderKeys }))
  const claims = messages.flatMap(m => m.kind === 'claim' ? [{ claim: m.claim, keyId: m.keyId, id: m.id }] : [])
  return computeVerdicts({ claims, policy })
}
export const tagLimit: number = LIMITS.tagLength
export const isTag: boolean = WIRE.tag.test('v1')
`

// A consumer outside the repository installs the package and imports `neko-rebuilder/protocol`:
// the package here is package.json as it is and the protocol as `npm run build` compiles it.
describe('neko-rebuilder/protocol as a consumer imports it', () => {
  let work: string
  let consumer: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'protocol-package-'))
    const pkg = join(work, 'pkg')
    await mkdir(pkg)
    await writeFile(join(pkg, 'package.json'), readFileSync(join(ROOT, 'package.json')))
    await symlink(join(ROOT, 'node_modules'), join(pkg, 'node_modules'))
    await writeFile(join(work, 'build.json'), JSON.stringify({
      extends: join(ROOT, 'tsconfig.build.json'),
      compilerOptions: { rootDir: join(ROOT, 'src'), outDir: join(pkg, 'dist'), typeRoots: [join(ROOT, 'node_modules/@types')] },
      files: [join(ROOT, 'src/protocol/index.ts')],
      include: []
    }))
    await run(process.execPath, [tsc, '-p', join(work, 'build.json')])

    consumer = join(work, 'consumer')
    await mkdir(join(consumer, 'node_modules'), { recursive: true })
    await symlink(pkg, join(consumer, 'node_modules', 'neko-rebuilder'))
    await symlink(join(ROOT, 'node_modules', '@types'), join(consumer, 'node_modules', '@types'))
    await writeFile(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  }, 180_000)

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('signs through the package, and the documented example verifies the bundle and prints the verdicts', async () => {
    const a = announcement()
    const claim = successClaim(digestOf('a'))
    const other = successClaim(digestOf('b'))
    await writeFile(join(consumer, 'input.json'), JSON.stringify({ announcement: a, claim, other }))
    await writeFile(join(consumer, 'sign.mjs'), SIGN)
    await run(process.execPath, ['sign.mjs'], { cwd: consumer })

    await writeFile(join(consumer, 'verify.mjs'), example('verify-bundle'))
    const { stdout, stderr } = await run(process.execPath, ['verify.mjs'], { cwd: consumer })
    const [amd64, arm64] = api.announcementTargets(a).map(api.targetKey)
    expect(stdout.trim().split('\n')).toEqual([
      `${amd64} reproducible ${digestOf('a')}`,
      `${arm64} pending -`
    ])
    expect(stderr).toMatch(/^release\.jsonl:5: ValidationError: /)
  }, 60_000)

  it('ships types that a TypeScript consumer compiles against', async () => {
    const entry = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string, default: string }> }).exports['./protocol']!
    expect(existsSync(join(work, 'pkg', entry.types)), entry.types).toBe(true)
    expect(existsSync(join(work, 'pkg', entry.default)), entry.default).toBe(true)
    await writeFile(join(consumer, 'typed.ts'), TYPED)
    await writeFile(join(consumer, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2023', types: ['node'] },
      files: ['typed.ts']
    }))
    await run(process.execPath, [tsc, '-p', consumer])
  }, 60_000)

  it('exposes only the protocol entry: internals and the node cannot be imported', async () => {
    for (const path of ['neko-rebuilder/dist/protocol/dsse.js', 'neko-rebuilder/dist/node/store/index.js', 'neko-rebuilder']) {
      const r = run(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(path)})`], { cwd: consumer })
      await expect(r, path).rejects.toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/)
    }
  }, 60_000)
})

describe('the public API', () => {
  it('is what docs/protocol-api.md documents, and no performance internal', () => {
    const names = Object.keys(api).sort()
    for (const name of names) expect(doc, `${name} is exported but not documented`).toContain(`\`${name}`)
    expect(names.filter(n => /InPlace|Scratch|Into$|^pae$|^check/.test(n))).toEqual([])
    // Every function the doc's tables name is exported.
    const documented = [...doc.matchAll(/^\| `([A-Za-z]+)\(/gm)].map(m => m[1] as string)
    expect(documented.length).toBeGreaterThan(15)
    for (const name of documented) expect(names, name).toContain(name)
  })
})
