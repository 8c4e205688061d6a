import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clearStaleLocks, LOCK_IMAGE, LOCK_LABEL, lockName, lockOnEngine } from '../../src/node/rebuilder/engine-lock.js'
import { runDevnet } from '../../src/node/devnet/devnet.js'
import { createFixtureProject, type FixtureProject } from '../../src/node/devnet/fixture-project.js'
import type { Claim } from '../../src/protocol/types.js'
import { engineAvailable } from '../helpers/engine.js'
import { busyboxPath } from '../helpers/fixtures.js'
import { runCli } from './cli-runner.js'

const available = engineAvailable('build: independent builds on one engine')
const TIMEOUT = 300_000

describe.skipIf(!available)('builds on one engine are independent', () => {
  let work: string
  let project: FixtureProject
  const docker = new Dockerode()

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'independent-test-'))
    project = await createFixtureProject({ dir: join(work, 'project'), nondeterministicWith: busyboxPath('amd64') })
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('three concurrent `rebuild`s of a release that writes the date and random bytes give three digests', async () => {
    const runs = await Promise.all([1, 2, 3].map(async i => await runCli([
      'rebuild', '--repo', project.repository, '--ref', project.tag, '--json', '--work-dir', join(work, `ws-${i}`)
    ])))
    const claims = runs.map(r => {
      expect(r.code, r.stderr).toBe(0)
      return (JSON.parse(r.stdout) as { claim: Claim }).claim
    })
    const digests = new Set(claims.map(c => c.result?.manifestDigest))
    expect(digests.size).toBe(3)
    // The claims say which engine and worker built them.
    const engineId = execFileSync('docker', ['info', '--format', '{{.ID}}']).toString().trim()
    for (const c of claims) {
      expect(c.environment.engine.id).toBe(engineId)
      expect(c.environment.buildkitWorker).toMatch(/^\S+\/\S+/)
    }
  }, TIMEOUT)

  it('the devnet on one engine finds that release unreproducible, with one digest per node', async () => {
    const result = await runDevnet({ nodes: 3, oneEngine: true, nondeterministicWith: busyboxPath('amd64'), timeoutMs: 240_000 })
    expect(result.settled).toBe(true)
    expect(result.reproducible).toBe(false)
    for (const node of result.nodes) expect(node.verdicts.map(v => v.status)).toEqual(['unreproducible'])
    const v = result.verdicts[0]!
    // Nodes share the work: the target is settled once two builds differ, and every build made
    // its own digest (none shared an in-flight step with another).
    const digests = [v.leadingDigest, ...v.dissenting.map(d => d.digest)]
    expect(digests.length).toBeGreaterThanOrEqual(2)
    expect(new Set(digests).size).toBe(digests.length)
    expect(v.sameEngine).toEqual([])
  }, TIMEOUT)

  it('a lock left by a process that is gone is cleared; a live one is waited for', async () => {
    const key = `${project.repository}@${'0'.repeat(40)}#stale-${process.pid}@linux/amd64`
    // A holder on this host whose pid does not run (pid_max is below 2^22).
    await (await lockOnEngine(docker, `${key} warm-up`, { holdMs: 1000 })).release() // imports the lock image when missing
    await docker.createContainer({
      name: lockName(key),
      Image: LOCK_IMAGE,
      Cmd: ['build-lock'],
      Labels: { [LOCK_LABEL]: key, [`${LOCK_LABEL}.holder`]: `${hostname()} 4194999 gone`, [`${LOCK_LABEL}.expires`]: new Date(Date.now() + 3600_000).toISOString() }
    })
    const lock = await lockOnEngine(docker, key, { holdMs: 60_000, pollMs: 50 })
    // Held by this process now: another taker waits until it is released.
    let second = false
    const waiting = lockOnEngine(docker, key, { holdMs: 60_000, pollMs: 50 }).then(l => { second = true; return l })
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(second).toBe(false)
    expect(await clearStaleLocks(docker)).toBe(0)
    await lock.release()
    await (await waiting).release()
    expect(second).toBe(true)
    await expect(docker.getContainer(lockName(key)).inspect()).rejects.toMatchObject({ statusCode: 404 })
  }, 60_000)
})
