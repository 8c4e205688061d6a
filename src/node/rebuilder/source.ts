import { existsSync } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import { tmpdir } from 'node:os'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { WIRE } from '../../protocol/patterns.js'
import { SourceError } from './errors.js'
import { git, GitCommandError } from './git.js'

export interface ResolvedRef {
  commit: string
  /** Committer time of the commit, Unix seconds: the build's SOURCE_DATE_EPOCH. */
  commitTime: number
  /** Set when `ref` named a tag. */
  tag?: string
}

export interface SourceOptions {
  signal?: AbortSignal
  /** Where to make the scratch repository for `resolveRef`; the system temp dir by default. */
  workDir?: string
}

/** A URL (`https://…`, `file://…`) or scp-like address (`git@host:path`), not a local path. */
function isRepositoryUrl (repository: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repository) || /^[^/]+@[^/]+:/.test(repository)
}

/**
 * A repository as signed messages name it: a local path made absolute (others read it from
 * other directories, so `.` would name each reader's own), a URL as it is.
 */
export function absoluteRepository (repository: string): string {
  return isRepositoryUrl(repository) || isAbsolute(repository) ? repository : resolve(repository)
}

/** Local paths become file:// URLs so git honours --depth for them too. */
export function repositoryUrl (repository: string): string {
  // Never let a repository be read as a git option.
  if (repository.startsWith('-') || repository.trim() === '') throw new SourceError(`repository ${JSON.stringify(repository)} is not a git URL or path`)
  if (isRepositoryUrl(repository)) return repository
  const path = absoluteRepository(repository)
  if (!existsSync(path)) throw new SourceError(`repository ${repository} is neither a URL nor an existing path`)
  return pathToFileURL(path).href
}

/** The absolute path of a repository given as a local path or file:// URL; undefined for remote URLs. */
function localRepositoryPath (repository: string): string | undefined {
  const url = repositoryUrl(repository)
  return url.startsWith('file://') ? fileURLToPath(url) : undefined
}

/**
 * Local repositories are cloned with hard links (`--local`): a shallow fetch would make git
 * repack and recompress every object, which costs seconds for a repository with large files.
 */
async function cloneLocal (dir: string, path: string, ref: string, opts: { bare: boolean, signal?: AbortSignal | undefined }): Promise<{ commit: string, tag?: string }> {
  const { bare, signal } = opts
  checkRef(ref)
  const clone = async (links: string): Promise<void> => {
    await git(['clone', '--quiet', links, '--no-checkout', ...(bare ? ['--bare'] : []), '--', path, dir], { signal })
  }
  try {
    try {
      await clone('--local')
    } catch (err) {
      // Hard links cannot cross file systems (a repository on another mount, as in a
      // container): copy the object files instead, still without a repack.
      if (!(err instanceof GitCommandError) || !/failed to create link|cross-device/i.test(err.message)) throw err
      await rm(dir, { recursive: true, force: true })
      await clone('--no-hardlinks')
    }
  } catch (err) {
    if (err instanceof GitCommandError) throw new SourceError(`cannot clone ${path}: ${err.message}`)
    throw err
  }
  const candidates: Array<{ rev: string, tag?: string }> = WIRE.commit.test(ref)
    ? [{ rev: ref }]
    : [{ rev: `refs/tags/${ref}`, tag: ref }, { rev: bare ? `refs/heads/${ref}` : `refs/remotes/origin/${ref}` }]
  for (const c of candidates) {
    try {
      const commit = (await git(['rev-parse', '--verify', '--quiet', `${c.rev}^{commit}`], { cwd: dir, signal })).trim()
      return c.tag != null ? { commit, tag: c.tag } : { commit }
    } catch (err) {
      if (!(err instanceof GitCommandError)) throw err
    }
  }
  throw new SourceError(`${path} has no tag, branch or commit ${JSON.stringify(ref)}`)
}

/** A tag or branch name by the wire's tag rule (a commit id is one too), never an option or a `..` path. */
function checkRef (ref: string): void {
  if (!WIRE.tag.test(ref) || ref.includes('..')) throw new SourceError(`ref ${JSON.stringify(ref)} is not a tag name or commit id`)
}

/** Claims name commits by their 40-hex SHA-1 id; a repository in SHA-256 object format has none. */
function checkCommit (commit: string, ref: string): void {
  if (!WIRE.commit.test(commit)) throw new SourceError(`${ref} resolves to ${JSON.stringify(commit.slice(0, 80))}, not a 40-hex commit id; repositories in SHA-256 object format cannot be rebuilt`)
}

/**
 * Fetches `ref` (a tag, branch or commit) into the repository at `dir` and returns the commit it
 * names, peeling annotated tags. Shallow where the server allows it.
 */
async function fetchRef (dir: string, url: string, ref: string, signal?: AbortSignal): Promise<{ commit: string, tag?: string }> {
  checkRef(ref)
  const attempts: Array<{ args: string[], tag?: string }> = WIRE.commit.test(ref)
    ? [{ args: ['fetch', '--quiet', '--no-tags', '--depth=1', '--', url, ref] }, { args: ['fetch', '--quiet', '--tags', '--', url, '+refs/heads/*:refs/remotes/src/*'] }]
    : [{ args: ['fetch', '--quiet', '--no-tags', '--depth=1', '--', url, `+refs/tags/${ref}:refs/tags/${ref}`], tag: ref }, { args: ['fetch', '--quiet', '--no-tags', '--depth=1', '--', url, ref] }]
  let last: unknown
  for (const attempt of attempts) {
    try {
      await git(attempt.args, { cwd: dir, signal })
      const target = WIRE.commit.test(ref) ? ref : attempt.tag != null ? `refs/tags/${ref}` : 'FETCH_HEAD'
      const commit = (await git(['rev-parse', '--verify', '--quiet', `${target}^{commit}`], { cwd: dir, signal })).trim()
      return attempt.tag != null ? { commit, tag: attempt.tag } : { commit }
    } catch (err) {
      if (!(err instanceof GitCommandError)) throw err
      last = err
    }
  }
  throw new SourceError(`cannot fetch ${JSON.stringify(ref)} from ${url}: ${(last as Error).message}`)
}

async function commitTime (dir: string, commit: string, signal?: AbortSignal): Promise<number> {
  const out = (await git(['show', '-s', '--format=%ct', commit], { cwd: dir, signal })).trim()
  const t = Number.parseInt(out, 10)
  if (!Number.isSafeInteger(t)) throw new SourceError(`commit ${commit} has no committer time`)
  return t
}

/** Resolves a tag or commit of a git URL or local path to its commit and committer time. Throws SourceError. */
export async function resolveRef (repository: string, ref: string, opts: SourceOptions = {}): Promise<ResolvedRef> {
  const url = repositoryUrl(repository)
  const local = localRepositoryPath(repository)
  const dir = await mkdtemp(join(opts.workDir ?? tmpdir(), 'resolve-'))
  try {
    let found: { commit: string, tag?: string }
    if (local != null) {
      found = await cloneLocal(join(dir, 'repo.git'), local, ref, { bare: true, signal: opts.signal })
    } else {
      await git(['init', '--quiet', '--bare'], { cwd: dir, signal: opts.signal })
      found = await fetchRef(dir, url, ref, opts.signal)
    }
    const { commit, tag } = found
    checkCommit(commit, ref)
    const gitDir = local != null ? join(dir, 'repo.git') : dir
    return { commit, commitTime: await commitTime(gitDir, commit, opts.signal), ...(tag != null ? { tag } : {}) }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * Checks out the exact commit `ref` names into `dir` (created). With `expectedCommit`, refuses
 * (SourceError) when the ref points elsewhere. `.git` is removed afterwards. File modes are normalised (0644/0755, dirs 0755)
 * because COPY keeps them and a checkout takes them from the host's umask.
 */
export async function checkout (repository: string, ref: string, dir: string, opts: { expectedCommit?: string, signal?: AbortSignal } = {}): Promise<ResolvedRef> {
  const url = repositoryUrl(repository)
  const local = localRepositoryPath(repository)
  await mkdir(dir, { recursive: true })
  let found: { commit: string, tag?: string }
  if (local != null) {
    found = await cloneLocal(dir, local, ref, { bare: false, signal: opts.signal })
  } else {
    await git(['init', '--quiet'], { cwd: dir, signal: opts.signal })
    // Relative submodule URLs resolve against origin.
    await git(['remote', 'add', 'origin', url], { cwd: dir, signal: opts.signal })
    found = await fetchRef(dir, url, ref, opts.signal)
  }
  const { commit, tag } = found
  checkCommit(commit, ref)
  if (opts.expectedCommit != null && opts.expectedCommit.toLowerCase() !== commit) {
    throw new SourceError(`${ref} points to commit ${commit}, not the expected ${opts.expectedCommit}`)
  }
  let time: number
  try {
    await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', commit], { cwd: dir, signal: opts.signal })
    time = await commitTime(dir, commit, opts.signal)
  } catch (err) {
    if (err instanceof GitCommandError) throw new SourceError(`cannot check out ${commit}: ${err.message}`)
    throw err
  }
  if (existsSync(join(dir, '.gitmodules'))) await checkoutSubmodules(dir, commit, local != null, opts.signal)
  // The context is the commit's tree only: .git holds host-specific state (index stat data).
  await rm(join(dir, '.git'), { recursive: true, force: true })
  await normaliseModes(dir)
  return { commit, commitTime: time, ...(tag != null ? { tag } : {}) }
}

/**
 * Checks out every submodule, recursively, at the commit the superproject records, then
 * removes their `.git` links. The file protocol is allowed only when the superproject is
 * itself a local path: a remote repository must not pull files of this host into the build
 * context through a submodule URL.
 */
async function checkoutSubmodules (dir: string, commit: string, allowFile: boolean, signal?: AbortSignal): Promise<void> {
  try {
    await git([...(allowFile ? ['-c', 'protocol.file.allow=always'] : []), 'submodule', '--quiet', 'update', '--init', '--recursive', '--jobs', '4'], { cwd: dir, signal })
    const paths = await git(['submodule', '--quiet', 'foreach', '--recursive', 'printf "%s\\0" "$displaypath"'], { cwd: dir, signal })
    for (const path of paths.split('\0').filter(p => p !== '')) await rm(join(dir, path, '.git'), { recursive: true, force: true })
  } catch (err) {
    if (err instanceof GitCommandError) throw new SourceError(`cannot check out the submodules of ${commit}: ${err.message}`)
    throw err
  }
}

async function normaliseModes (dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      await chmod(path, 0o755)
      await normaliseModes(path)
    } else if (entry.isFile()) {
      const mode = (await lstat(path)).mode
      await chmod(path, (mode & 0o100) !== 0 ? 0o755 : 0o644)
    }
  }
}
