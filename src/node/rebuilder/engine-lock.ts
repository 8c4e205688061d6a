import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type Dockerode from 'dockerode'
import type { Logger } from '../logger.js'
import { holderGone, holderTag } from './holder.js'

/**
 * One build of a target per engine at a time, across every process that uses the engine.
 *
 * BuildKit runs an identical step once for all builds in flight on its engine, `--no-cache` or
 * not, so two nodes on one engine that build a target together get one result between them
 * and would agree even on a release that writes the date into its image. The lock is a
 * container named after the target, created and never started: the engine refuses a second
 * container of the same name, atomically. It runs nothing and has no network; its image is an
 * empty one imported locally (nothing is pulled). Labels say who holds it and until when, so a
 * holder killed with -9 does not block the target for ever (docs/rebuild.md, "One build of a
 * target per engine").
 */

export const LOCK_LABEL = 'org.neko-rebuilder.build-lock'
const HOLDER_LABEL = `${LOCK_LABEL}.holder`
const EXPIRES_LABEL = `${LOCK_LABEL}.expires`
/** An image with no layers, imported from an empty tar archive when missing. */
export const LOCK_IMAGE = 'neko-rebuilder-lock:1'

export interface EngineLock {
  release: () => Promise<void>
}

export interface EngineLockOptions {
  /** Held at most this long; after that another builder may take it over. */
  holdMs: number
  signal?: AbortSignal
  pollMs?: number
  log?: Logger
}

/** `neko-rebuilder-lock-<first 32 hex of sha256(target key)>`: a valid container name for any key. */
export function lockName (key: string): string {
  return `neko-rebuilder-lock-${createHash('sha256').update(key).digest('hex').slice(0, 32)}`
}

/**
 * A lock whose holder is gone: past its expiry, or held by a process of this host that no
 * longer runs. A lock of another host is only given up at expiry.
 */
export function isStale (labels: Record<string, string> | undefined, now = Date.now()): boolean {
  const expires = Date.parse(labels?.[EXPIRES_LABEL] ?? '')
  if (!Number.isFinite(expires) || expires <= now) return true
  return holderGone(labels?.[HOLDER_LABEL])
}

const statusOf = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode

async function importLockImage (docker: Dockerode): Promise<void> {
  // An empty tar archive is two zero blocks.
  const stream = await docker.importImage(Readable.from([Buffer.alloc(1024)]) as unknown as string, { repo: LOCK_IMAGE.split(':')[0], tag: LOCK_IMAGE.split(':')[1] })
  await new Promise<void>((resolve, reject) => { docker.modem.followProgress(stream, err => { if (err != null) reject(err); else resolve() }) })
}

/** Waits for, then takes, the engine-wide lock of `key`. */
export async function lockOnEngine (docker: Dockerode, key: string, opts: EngineLockOptions): Promise<EngineLock> {
  const name = lockName(key)
  const pollMs = opts.pollMs ?? 1000
  let said = false
  let imported = false
  for (;;) {
    opts.signal?.throwIfAborted()
    try {
      const created = await docker.createContainer({
        name,
        Image: LOCK_IMAGE,
        Cmd: ['build-lock'],
        NetworkDisabled: true,
        Labels: { [LOCK_LABEL]: key.slice(0, 1000), [HOLDER_LABEL]: holderTag(), [EXPIRES_LABEL]: new Date(Date.now() + opts.holdMs).toISOString() },
        HostConfig: { NetworkMode: 'none' }
      })
      return {
        async release () {
          await created.remove({ force: true }).catch((err: unknown) => {
            if (statusOf(err) !== 404) opts.log?.warn({ err, lock: name }, 'releasing the build lock failed')
          })
        }
      }
    } catch (err) {
      if (statusOf(err) === 404 && !imported) {
        await importLockImage(docker)
        imported = true
        continue
      }
      if (statusOf(err) !== 409) throw err
    }
    // Taken: by a live build (wait) or a dead one (clear it, by id so a fresh lock survives).
    try {
      const info = await docker.getContainer(name).inspect()
      if (isStale(info.Config.Labels)) {
        opts.log?.warn({ lock: name, holder: info.Config.Labels?.[HOLDER_LABEL] }, 'removing a stale build lock')
        await docker.getContainer(info.Id).remove({ force: true }).catch(() => {})
        continue
      }
    } catch (err) {
      if (statusOf(err) !== 404) throw err
      continue
    }
    if (!said) {
      opts.log?.info({ target: key, lock: name }, 'another build of this target runs on this engine: waiting for it, so the two builds share no step')
      said = true
    }
    await sleep(pollMs + Math.floor(Math.random() * pollMs / 2), undefined, opts.signal != null ? { signal: opts.signal } : {})
  }
}

/** Removes the build locks on this engine whose holders are gone; returns how many. */
export async function clearStaleLocks (docker: Dockerode, log?: Logger): Promise<number> {
  const locks = await docker.listContainers({ all: true, filters: { label: [LOCK_LABEL] } })
  let n = 0
  for (const c of locks) {
    if (!isStale(c.Labels)) continue
    await docker.getContainer(c.Id).remove({ force: true }).then(() => { n++ }, () => {})
    log?.info({ lock: c.Names[0], holder: c.Labels[HOLDER_LABEL] }, 'removed a stale build lock')
  }
  return n
}
