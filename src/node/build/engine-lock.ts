import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type Dockerode from 'dockerode'
import type { Logger } from '../logger.js'
import { holderGone, holderTag } from './holder.js'

/**
 * One build of a target per engine at a time, across every process that uses the engine.
 *
 * BuildKit runs an identical step once for all builds in flight on its engine, `--no-cache` or
 * not, so two nodes on one engine that build a target together get one result between them
 * and would agree even on a release that writes the date into its image. The lock is a Docker
 * network named after the target: creating a network whose name exists fails on the engine
 * itself, atomically, and a network needs no image (nothing can be pulled here) and runs
 * nothing. Labels say who holds it and until when, so a holder killed with -9 does not block
 * the target for ever (docs/rebuild.md, "One build of a target per engine").
 */

export const LOCK_LABEL = 'org.neko-rebuilder.build-lock'
const HOLDER_LABEL = `${LOCK_LABEL}.holder`
const EXPIRES_LABEL = `${LOCK_LABEL}.expires`

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

/** `neko-rebuilder-lock-<first 32 hex of sha256(target key)>`: a valid network name for any key. */
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

/** Waits for, then takes, the engine-wide lock of `key`. */
export async function lockOnEngine (docker: Dockerode, key: string, opts: EngineLockOptions): Promise<EngineLock> {
  const name = lockName(key)
  const pollMs = opts.pollMs ?? 1000
  let said = false
  for (;;) {
    opts.signal?.throwIfAborted()
    try {
      const created = await docker.createNetwork({
        Name: name,
        Internal: true,
        Labels: {
          [LOCK_LABEL]: key.slice(0, 1000),
          [HOLDER_LABEL]: holderTag(),
          [EXPIRES_LABEL]: new Date(Date.now() + opts.holdMs).toISOString()
        }
      })
      const id = created.id
      return {
        async release () {
          await docker.getNetwork(id).remove().catch((err: unknown) => {
            if (statusOf(err) !== 404) opts.log?.warn({ err, lock: name }, 'releasing the build lock failed')
          })
        }
      }
    } catch (err) {
      if (statusOf(err) !== 409) throw err
    }
    // Taken: by a live build (wait) or a dead one (clear it, by id so a fresh lock survives).
    try {
      const info = await docker.getNetwork(name).inspect() as { Id: string, Labels?: Record<string, string> }
      if (isStale(info.Labels)) {
        opts.log?.warn({ lock: name, holder: info.Labels?.[HOLDER_LABEL] }, 'removing a stale build lock')
        await docker.getNetwork(info.Id).remove().catch(() => {})
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
  const nets = await docker.listNetworks({ filters: { label: [LOCK_LABEL] } }) as Array<{ Id: string, Name: string, Labels?: Record<string, string> }>
  let n = 0
  for (const net of nets) {
    if (!isStale(net.Labels)) continue
    await docker.getNetwork(net.Id).remove().then(() => { n++ }, () => {})
    log?.info({ lock: net.Name, holder: net.Labels?.[HOLDER_LABEL] }, 'removed a stale build lock')
  }
  return n
}
