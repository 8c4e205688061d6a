import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRebuilder } from '../../src/node/rebuilder/index.js'
import { createDaemon } from '../../src/node/daemon/daemon.js'
import { createFixtureProject } from '../../src/node/devnet/fixture-project.js'
import type { JobsView } from '../../src/node/scheduler/jobs-view.js'
import type { Daemon } from '../../src/node/daemon/types.js'
import { createMetrics } from '../../src/node/metrics.js'
import { createStore } from '../../src/node/store/index.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement } from '../../src/protocol/messages.js'
import type { Announcement } from '../../src/protocol/types.js'
import { engineAvailable } from '../helpers/engine.js'
import { LOOPBACK, policyFor, waitFor } from './helpers.js'

const available = engineAvailable('jobs view')

function cli (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, NEKO_LOG_LEVEL: 'silent' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

describe.skipIf(!available)('the build queue: /api/v1/jobs, `jobs --node`, gauges and the age limit', () => {
  let dir: string
  let daemon: Daemon
  let url: string
  let release: () => void = () => {}
  const announcer = generateIdentity()
  const builder = generateIdentity()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'neko-jobs-'))
    const store = await createStore({}, { path: join(dir, 'store') })
    const real = createRebuilder({}, { workDir: join(dir, 'work'), timeoutMs: 180_000 })
    // The real engine builds; the result is held back until the test has looked at the running build.
    const gate = new Promise<void>(resolve => { release = resolve })
    const rebuilder: typeof real = {
      checkEngine: async () => await real.checkEngine(),
      capabilities: async () => await real.capabilities(),
      sweep: async () => await real.sweep(),
      async rebuild (req, opts) {
        const outcome = await real.rebuild(req, opts)
        await gate
        return outcome
      }
    }
    daemon = await createDaemon({ identity: builder, store, policy: policyFor([builder], [announcer], 1), rebuilder, metrics: createMetrics({ processMetrics: false }) }, {
      listen: [LOOPBACK],
      mdns: false,
      http: { host: '127.0.0.1', port: 0 },
      maxAnnouncementAgeMs: 30 * 86_400_000
    })
    await daemon.start()
    url = daemon.httpUrl() as string
  }, 120_000)
  afterAll(async () => {
    release()
    await daemon?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  async function jobs (): Promise<JobsView> {
    const res = await fetch(`${url}/api/v1/jobs`)
    expect(res.status).toBe(200)
    return await res.json() as JobsView
  }

  async function gauge (name: string): Promise<number> {
    const text = await (await fetch(`${url}/metrics`)).text()
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
    expect(m, `${name} in /metrics`).not.toBeNull()
    return Number(m?.[1])
  }

  it('does not queue a release announced before the age limit', async () => {
    const fixture = await createFixtureProject({ dir: join(dir, 'old'), tag: 'v0.9.0' })
    const old: Announcement = {
      repository: fixture.repository,
      tag: fixture.tag,
      commit: fixture.commit,
      recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` },
      targets: [{ variant: 'default', platform: 'linux/amd64' }],
      announcedAt: new Date(Date.now() - 60 * 86_400_000).toISOString()
    }
    const r = await daemon.announce(signAnnouncement(old, announcer))
    expect(r.stored).toBe(true)
    const view = await jobs()
    expect(view.counts).toEqual({ queued: 0, running: 0, done: 0, failed: 0, refused: 0, broken: 0, covered: 0 })
    expect(await gauge('neko_jobs_queued')).toBe(0)
  })

  it('shows a running build with its step, elapsed time and log, then its result', async () => {
    const fixture = await createFixtureProject({ dir: join(dir, 'new'), tag: 'v1.0.0' })
    const fresh: Announcement = {
      repository: fixture.repository,
      tag: fixture.tag,
      commit: fixture.commit,
      recipe: { name: 'repository', digest: `sha256:${'0'.repeat(64)}` },
      targets: [{ variant: 'default', platform: 'linux/amd64' }],
      announcedAt: new Date().toISOString()
    }
    await daemon.announce(signAnnouncement(fresh, announcer))
    let view: JobsView | undefined
    await waitFor('the build to reach its last phase', async () => {
      view = await jobs()
      return view.running[0]?.phase === 'read'
    }, 120_000)
    const running = view!.running[0]!
    expect(running.job.target.tag).toBe('v1.0.0')
    expect(running.elapsedMs).toBeGreaterThan(0)
    expect(running.elapsed).toMatch(/^\d+(m\d\ds|s)$/)
    // The log is named by tag, variant and platform, and exists while the build runs.
    expect(running.logPath).toMatch(/\/v1\.0\.0-default-linux-amd64-\d+-[^/]+\.log$/)
    expect((await stat(running.logPath!)).isFile()).toBe(true)
    expect(await gauge('neko_builds_running')).toBe(1)

    const shown = await cli('jobs', '--node', url)
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/^1 running, 0 queued, 0 done/)
    expect(shown.stdout).toContain('v1.0.0 default linux/amd64')
    expect(shown.stdout).toContain(`log ${running.logPath!}`)

    release()
    await waitFor('the build to finish', async () => (await jobs()).counts.done === 1, 60_000)
    view = await jobs()
    expect(view.running).toEqual([])
    expect(view.recent.map(j => [j.state, j.target.tag])).toEqual([['done', 'v1.0.0']])
    expect(await gauge('neko_builds_running')).toBe(0)
    const json = await cli('jobs', '--node', url, '--json')
    expect((JSON.parse(json.stdout) as JobsView).recent[0]?.claimId).toBe(view.recent[0]?.claimId)
  }, 180_000)

  it('refuses a bad query and reports an unreachable node in one line', async () => {
    expect((await fetch(`${url}/api/v1/jobs?limit=x`)).status).toBe(400)
    const r = await cli('jobs', '--node', 'http://127.0.0.1:1')
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/unreachable/)
  })
})
