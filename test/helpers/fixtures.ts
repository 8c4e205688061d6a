import { execFile, spawn } from 'node:child_process'
import { createServer, connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { existsSync } from 'node:fs'
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Where setup-host.sh puts the static busybox binaries; NEKO_FIXTURE_DIR overrides. */
export function fixtureDir (): string {
  return process.env.NEKO_FIXTURE_DIR ?? '/var/lib/neko-rebuilder/fixtures'
}

export function busyboxPath (arch: 'amd64' | 'arm64' = 'amd64'): string {
  return join(fixtureDir(), `busybox-${arch}`)
}

export function busyboxAvailable (arch: 'amd64' | 'arm64' = 'amd64'): boolean {
  return existsSync(busyboxPath(arch))
}

/**
 * A Dockerfile for a FROM-scratch image with busybox as its shell (COPY busybox into /bin,
 * link the applets RUN steps use), followed by `lines`.
 */
export function scratchDockerfile (lines: string[], opts: { applets?: string[] } = {}): string {
  const applets = opts.applets ?? ['sh', 'date', 'echo', 'cat', 'mkdir', 'dd', 'sleep', 'head', 'sed']
  return [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'SHELL ["/bin/busybox", "sh", "-c"]',
    `RUN ${applets.map(a => `/bin/busybox ln -s busybox /bin/${a}`).join(' && ')}`,
    ...lines,
    ''
  ].join('\n')
}

export type FixtureFile = string | Buffer | { content: string | Buffer, mode?: number } | { symlink: string }

export interface FixtureCommitOptions {
  files: Record<string, FixtureFile>
  /** Committer and author date; fixed so commits (and SOURCE_DATE_EPOCH) are the same on every run. */
  date?: string
  message?: string
  /** Tag the commit; annotated unless `lightweight`. */
  tag?: string
  lightweight?: boolean
  /** Copy the busybox binary for this arch into the repository root as `busybox`. */
  busybox?: 'amd64' | 'arm64'
  /** Submodules to add: path in this repository -> URL (relative URLs resolve against this repository's path). */
  submodules?: Record<string, string>
}

export interface FixtureCommit {
  commit: string
  /** Unix seconds of the committer date. */
  commitTime: number
  tag?: string
}

export interface FixtureRepo {
  dir: string
  commits: FixtureCommit[]
  /** Adds files (a path mapped to null-like empty string stays a file) and commits them. */
  commit: (opts: FixtureCommitOptions) => Promise<FixtureCommit>
  cleanup: () => Promise<void>
}

const DEFAULT_DATE = '2024-01-02T03:04:05Z'

async function git (dir: string, args: string[], date: string): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd: dir,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Fixture',
      GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
      GIT_COMMITTER_NAME: 'Fixture',
      GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
      GIT_AUTHOR_DATE: date,
      GIT_COMMITTER_DATE: date,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null'
    }
  })
  return stdout.trim()
}

/**
 * Makes a git repository in a temp dir (or `parent`) with one commit of `first.files`, fixed
 * dates and an optional tag. Further commits through `repo.commit()`. `objectFormat: 'sha256'`
 * makes a repository whose commit ids are 64 hex.
 */
export async function createFixtureRepo (first: FixtureCommitOptions, parent?: string, opts: { objectFormat?: 'sha1' | 'sha256' } = {}): Promise<FixtureRepo> {
  const dir = await mkdtemp(join(parent ?? tmpdir(), 'neko-fixture-'))
  await git(dir, ['init', '--quiet', '--initial-branch=main', `--object-format=${opts.objectFormat ?? 'sha1'}`], DEFAULT_DATE)
  const repo: FixtureRepo = {
    dir,
    commits: [],
    commit: async opts => {
      const date = opts.date ?? DEFAULT_DATE
      const files: Record<string, FixtureFile> = { ...opts.files }
      for (const [path, file] of Object.entries(files)) {
        const target = join(dir, path)
        await mkdir(dirname(target), { recursive: true })
        if (typeof file === 'object' && !Buffer.isBuffer(file) && 'symlink' in file) {
          await rm(target, { force: true })
          await symlink(file.symlink, target)
          continue
        }
        const content = typeof file === 'string' || Buffer.isBuffer(file) ? file : file.content
        await writeFile(target, content)
        await chmod(target, typeof file === 'object' && !Buffer.isBuffer(file) && 'mode' in file && file.mode != null ? file.mode : 0o644)
      }
      if (opts.busybox != null) {
        await copyFile(busyboxPath(opts.busybox), join(dir, 'busybox'))
        await chmod(join(dir, 'busybox'), 0o755)
      }
      for (const [path, url] of Object.entries(opts.submodules ?? {})) {
        await git(dir, ['-c', 'protocol.file.allow=always', 'submodule', '--quiet', 'add', url, path], date)
      }
      await git(dir, ['add', '-A'], date)
      await git(dir, ['commit', '--quiet', '--allow-empty', '-m', opts.message ?? 'fixture'], date)
      const commit = await git(dir, ['rev-parse', 'HEAD'], date)
      const commitTime = Number(await git(dir, ['show', '-s', '--format=%ct', 'HEAD'], date))
      if (opts.tag != null) {
        await git(dir, opts.lightweight === true ? ['tag', opts.tag] : ['tag', '-a', opts.tag, '-m', opts.tag], date)
      }
      const c: FixtureCommit = { commit, commitTime, ...(opts.tag != null ? { tag: opts.tag } : {}) }
      repo.commits.push(c)
      return c
    },
    cleanup: async () => { await rm(dir, { recursive: true, force: true }) }
  }
  await repo.commit(first)
  return repo
}

export interface GitServer {
  /** `git://127.0.0.1:<port>/<name>` for a repository directory under the served base dir. */
  url: (repoDir: string) => string
  close: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/**
 * Serves every repository under `baseDir` over the git protocol on 127.0.0.1 (`git daemon`),
 * so tests exercise the network fetch path (shallow fetch by tag or commit) rather than a local clone.
 */
export async function serveGitRepos (baseDir: string): Promise<GitServer> {
  const port = await freePort()
  const child = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${baseDir}`, '--listen=127.0.0.1', `--port=${port}`,
    '--enable=upload-pack', '--informative-errors', baseDir], { stdio: 'ignore', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' } })
  // Ready when the port accepts connections.
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>(resolve => {
      const sock = connect(port, '127.0.0.1', () => { sock.destroy(); resolve(true) })
      sock.once('error', () => resolve(false))
    })
    if (ok) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    url: repoDir => `git://127.0.0.1:${port}/${basename(repoDir)}`,
    close: async () => {
      if (child.exitCode != null) return
      await new Promise<void>(resolve => { child.once('exit', () => resolve()); child.kill('SIGTERM') })
    }
  }
}
