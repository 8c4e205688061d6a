/**
 * What the worked examples share: running commands, the CLI as a user runs it, a local Debian
 * base made with mmdebstrap and `docker import` once and kept under a fixed tag, rebuilds
 * through `neko-rebuilder rebuild` and comparisons through `neko-rebuilder diff`.
 */
import { spawn } from 'node:child_process'
import { cp, mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ImageDiff } from '../src/node/compare/index.js'

export const ROOT = resolve(fileURLToPath(import.meta.url), '../..')

/** The base's package set is fixed by its time: the same SOURCE_DATE_EPOCH, the same minbase. */
export const BASE_EPOCH = '1735689600'

export const arg = (name: string): string | undefined => { const i = process.argv.indexOf(name); return i === -1 ? undefined : process.argv[i + 1] }

export interface RunResult { code: number | null, stdout: string, stderr: string }

export async function run (cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return await new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-20_000) })
    child.on('error', fail)
    child.on('close', code => done({ code, stdout, stderr }))
  })
}

export async function must (cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}: ${r.stderr.slice(-2000)}`)
  return r.stdout
}

/** The CLI, as `neko-rebuilder ARGS`. */
export const cli = async (args: string[]): Promise<RunResult> =>
  await run(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], { env: { NEKO_LOG_LEVEL: 'silent' } })

export function stopwatch (): (s: string) => void {
  const t0 = performance.now()
  return s => console.log(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${s}`)
}

/**
 * The image `tag`, made once with `mmdebstrap --variant=minbase trixie` (SOURCE_DATE_EPOCH
 * BASE_EPOCH, `include` added) and `docker import`; later runs find it and reuse it.
 */
export async function debianBase (tag: string, include: string[], tarball: string, say: (s: string) => void): Promise<string> {
  if ((await run('docker', ['image', 'inspect', tag])).code === 0) return tag
  say(`mmdebstrap --variant=minbase${include.length > 0 ? ` --include=${include.join(',')}` : ''} trixie (SOURCE_DATE_EPOCH=${BASE_EPOCH}), docker import as ${tag}`)
  await must('mmdebstrap', ['--variant=minbase', ...(include.length > 0 ? [`--include=${include.join(',')}`] : []), 'trixie', tarball], { env: { SOURCE_DATE_EPOCH: BASE_EPOCH } })
  await must('docker', ['import', tarball, tag])
  return tag
}

/** `neko-rebuilder rebuild` of one variant of a recipe; the OCI tarball's path. */
export async function rebuild (repo: string, ref: string, recipe: string, variant: string, out: string, workDir: string, say: (s: string) => void): Promise<string> {
  say(`neko-rebuilder rebuild --repo ${repo} --ref ${ref} --recipe ${recipe} --variant ${variant} --out ${out}`)
  const r = await cli(['rebuild', '--repo', repo, '--ref', ref, '--recipe', recipe, '--variant', variant, '--platform', 'linux/amd64', '--out', out, '--work-dir', workDir, '--json'])
  if (r.code !== 0) throw new Error(`rebuild failed (${r.code}): ${r.stdout.slice(-3000)} ${r.stderr.slice(-2000)}`)
  return (JSON.parse(r.stdout) as { ociPath: string }).ociPath
}

/** `neko-rebuilder diff --json A B [--fix DOCKERFILE]`; what --fix says goes to stdout. */
export async function diff (a: string, b: string, say: (s: string) => void, fix?: string): Promise<ImageDiff> {
  say(`neko-rebuilder diff ${a} ${b}${fix != null ? ` --fix ${fix}` : ''}`)
  const r = await cli(['diff', '--json', a, b, ...(fix != null ? ['--fix', fix] : [])])
  if (r.code !== 0 && r.code !== 1) throw new Error(`diff failed (${r.code}): ${r.stderr}`)
  if (r.stderr !== '') process.stdout.write(r.stderr)
  return JSON.parse(r.stdout) as ImageDiff
}

/**
 * `base` with the certificates of `caDir` trusted (system store, and Node through
 * NODE_EXTRA_CA_CERTS), tagged `TAG-ca`: for hosts whose egress goes through a TLS-intercepting
 * proxy, so that a RUN step can reach the npm registry. Made once, like the base.
 */
export async function withCa (base: string, caDir: string, context: string, say: (s: string) => void): Promise<string> {
  const tag = base.replace(/:([^:/]+)$/, '-ca:$1')
  if ((await run('docker', ['image', 'inspect', tag])).code === 0) return tag
  say(`trusting the certificates of ${caDir} in ${tag}`)
  await mkdir(context, { recursive: true })
  await cp(caDir, join(context, 'ca'), { recursive: true })
  await writeFile(join(context, 'Dockerfile'), [
    `FROM ${base}`,
    'COPY ca/ /usr/local/share/ca-certificates/',
    'RUN update-ca-certificates',
    'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
    ''
  ].join('\n'))
  await must('docker', ['build', '--quiet', '-t', tag, context])
  return tag
}
