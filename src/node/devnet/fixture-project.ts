import { execFile } from 'node:child_process'
import { copyFile, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface FixtureProject {
  /** Local path of the git repository (a valid `repository` for announcements). */
  repository: string
  tag: string
  commit: string
}

/** Committer date of the fixture commit: SOURCE_DATE_EPOCH of every rebuild of it. */
const FIXTURE_EPOCH = 1_700_000_000

/**
 * A small project whose image every node can rebuild with no base image and no network:
 * FROM scratch and COPY steps only (nothing runs, so no shell is needed), one commit at a
 * fixed date, tagged. Used by `devnet` and the network tests.
 */
export interface FixtureProjectOptions {
  tag?: string
  epoch?: number
  /**
   * A static busybox binary: the image then also runs a step that writes the build time and
   * 32 random bytes into it, so no two builds that really ran give the same digest.
   */
  nondeterministicWith?: string
}

export interface FixtureProjectInit extends FixtureProjectOptions {
  /** Where the repository and its site are written. */
  dir: string
}

export async function createFixtureProject (init: FixtureProjectInit): Promise<FixtureProject> {
  const { dir, ...opts } = init
  const tag = opts.tag ?? 'v1.0.0'
  const epoch = opts.epoch ?? FIXTURE_EPOCH
  await mkdir(join(dir, 'site'), { recursive: true })
  const lines = [
    'FROM scratch',
    'COPY hello.txt /hello.txt',
    'COPY site/ /srv/site/'
  ]
  if (opts.nondeterministicWith != null) {
    await copyFile(opts.nondeterministicWith, join(dir, 'busybox'))
    lines.push(
      'COPY busybox /bin/busybox',
      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox date +%s.%N > /built-at && /bin/busybox head -c 32 /dev/urandom > /random"]'
    )
  }
  lines.push('LABEL org.opencontainers.image.title="neko-rebuilder fixture"', '')
  await writeFile(join(dir, 'Dockerfile'), lines.join('\n'))
  await writeFile(join(dir, 'hello.txt'), 'Hello from a reproducible release.\n')
  await writeFile(join(dir, 'site', 'index.html'), '<!doctype html><title>fixture</title><p>rebuilt bit for bit</p>\n')
  await writeFile(join(dir, 'site', 'release.json'), JSON.stringify({ name: 'fixture', tag }, null, 2) + '\n')
  const env = {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Fixture',
    GIT_AUTHOR_EMAIL: 'fixture@example.invalid',
    GIT_COMMITTER_NAME: 'Fixture',
    GIT_COMMITTER_EMAIL: 'fixture@example.invalid',
    GIT_AUTHOR_DATE: `@${epoch} +0000`,
    GIT_COMMITTER_DATE: `@${epoch} +0000`
  }
  const git = async (...args: string[]): Promise<string> => (await run('git', args, { cwd: dir, env })).stdout.trim()
  await git('init', '--quiet', '--initial-branch=main')
  await git('add', '-A')
  await git('commit', '--quiet', '-m', `release ${tag}`)
  await git('tag', tag)
  return { repository: dir, tag, commit: await git('rev-parse', 'HEAD') }
}
