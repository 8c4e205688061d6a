import { copyFile, link, mkdir, rename, rm, stat, utimes } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ValidationError } from '../../protocol/errors.js'
import { WIRE } from '../../protocol/patterns.js'
import type { Digest } from '../../protocol/types.js'
import type { Logger } from '../logger.js'
import { boundsOf, pruneDir, type DirBounds } from './bounded-dir.js'

/**
 * The OCI tarballs of this node's recent rebuilds, one per claimed image under `dir`, so that
 * a divergence report can read this side's bytes of a differing file (a gzip header, a .pyc
 * header, a line of text) instead of calling it `unknown`. Bounded by count, age and bytes,
 * the oldest going first (docs/node.md); the bounds hold at every moment, across restarts too:
 * room is made before a tarball is added, and `prune` at start applies bounds that shrank.
 */
export interface OutputKeeperInit extends Partial<DirBounds> {
  dir: string
}

export interface OutputKeeper {
  /** Keeps a copy of `tarPath` (a hard link where the file system allows) as the output of `manifestDigest`. */
  put: (manifestDigest: Digest, tarPath: string) => Promise<boolean>
  /** The kept tarball of `manifestDigest`, if it is still kept. */
  get: (manifestDigest: Digest) => Promise<string | undefined>
  /** Applies the bounds now (and removes half-written copies); returns how many files went. */
  prune: () => Promise<number>
  readonly dir: string
  readonly bounds: DirBounds
}

/** A few recent images: enough to explain the dissent on the latest releases, not an archive. */
export const OUTPUT_DEFAULTS = { maxCount: 3, maxAgeMs: 7 * 24 * 60 * 60_000, maxBytes: 8 * 1024 * 1024 * 1024 } as const

const FILE = /^[0-9a-f]{64}\.oci\.tar$/
const STALE = /^[0-9a-f]{64}\.oci\.tar\.tmp$/

function fileOf (dir: string, digest: Digest): string {
  if (!WIRE.digest.test(digest)) throw new ValidationError('manifestDigest', 'must be a sha256 digest')
  return join(dir, `${digest.slice(7)}.oci.tar`)
}

export function createOutputKeeper (components: { log: Logger }, init: OutputKeeperInit): OutputKeeper {
  const dir = resolve(init.dir)
  const bounds = boundsOf('outputs', OUTPUT_DEFAULTS, init)
  const { log } = components
  let queue: Promise<unknown> = Promise.resolve()

  /** One change of the directory at a time: the bounds are judged on what is there. */
  async function serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn)
    queue = run.catch(() => {})
    return await run
  }

  async function prune (room?: { count: number, bytes: number }): Promise<number> {
    const b = room == null ? bounds : { ...bounds, maxCount: bounds.maxCount - room.count, maxBytes: bounds.maxBytes - room.bytes }
    const removed = await pruneDir(dir, FILE, b, STALE)
    if (removed.length > 0) log.debug({ removed: removed.length }, 'kept rebuild outputs pruned')
    return removed.length
  }

  return {
    dir,
    bounds,
    async put (manifestDigest, tarPath) {
      const file = fileOf(dir, manifestDigest)
      return await serial(async () => {
        const size = (await stat(tarPath)).size
        if (size > bounds.maxBytes) {
          log.info({ manifestDigest, bytes: size, limit: bounds.maxBytes }, 'a rebuild output is larger than the disk allowed for outputs: not kept')
          return false
        }
        await mkdir(dir, { recursive: true })
        // Room first, so the directory is never over its bounds, even for a moment.
        await rm(file, { force: true })
        await prune({ count: 1, bytes: size })
        const tmp = `${file}.tmp`
        await rm(tmp, { force: true })
        // A hard link costs no disk while the workspace still holds the tarball; a copy otherwise.
        await link(tarPath, tmp).catch(async () => { await copyFile(tarPath, tmp) })
        const now = new Date()
        await utimes(tmp, now, now)
        await rename(tmp, file)
        return true
      })
    },
    async get (manifestDigest) {
      const file = fileOf(dir, manifestDigest)
      const s = await stat(file).catch(() => undefined)
      if (s == null || Date.now() - s.mtimeMs > bounds.maxAgeMs) return undefined
      return file
    },
    prune: async () => await serial(async () => await prune())
  }
}
