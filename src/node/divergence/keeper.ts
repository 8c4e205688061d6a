import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Digest, Target } from '../../protocol/types.js'
import { ValidationError } from '../../protocol/errors.js'
import { WIRE } from '../../protocol/patterns.js'
import type { Logger } from '../logger.js'
import { fileManifestOf, type FileManifest } from '../compare/index.js'
import { type Rebuilder } from '../rebuilder/index.js'
import { boundsOf, pruneDir } from './bounded-dir.js'
import type { OutputKeeper } from './outputs.js'

/**
 * The file manifests of this node's recent rebuilds, one JSON file per claimed image under
 * `dir`, so that a dissenting builder can be told which files differ long after the build's
 * tarball is gone. Bounded by count, age and bytes (docs/node.md).
 */
export interface ManifestKeeperInit {
  dir: string
  /** Manifests kept; the oldest go first. Default 100. */
  maxCount?: number
  /** Manifests older than this are dropped. Default 30 days. */
  maxAgeMs?: number
  /** Bytes of manifests kept on disk. Default 1 GiB. */
  maxBytes?: number
}

export interface KeptManifest {
  target: Target
  manifestDigest: Digest
  /** RFC 3339. */
  keptAt: string
  manifest: FileManifest
}

export interface ManifestKeeper {
  put: (target: Target, manifestDigest: Digest, manifest: FileManifest) => Promise<void>
  get: (manifestDigest: Digest) => Promise<KeptManifest | undefined>
  /** Applies the bounds now; returns how many manifests were dropped. */
  prune: () => Promise<number>
  readonly dir: string
}

export const KEEPER_DEFAULTS = { maxCount: 100, maxAgeMs: 30 * 24 * 60 * 60_000, maxBytes: 1024 * 1024 * 1024 } as const

const FILE = /^[0-9a-f]{64}\.json$/

function fileOf (dir: string, digest: Digest): string {
  if (!WIRE.digest.test(digest)) throw new ValidationError('manifestDigest', 'must be a sha256 digest')
  return join(dir, `${digest.slice(7)}.json`)
}

export function createManifestKeeper (components: { log: Logger }, init: ManifestKeeperInit): ManifestKeeper {
  const dir = resolve(init.dir)
  const limits = boundsOf('manifests', KEEPER_DEFAULTS, init)
  const { log } = components

  async function prune (): Promise<number> {
    const dropped = (await pruneDir(dir, FILE, limits)).length
    if (dropped > 0) log.debug({ dropped }, 'file manifests pruned')
    return dropped
  }

  return {
    dir,
    async put (target, manifestDigest, manifest) {
      await mkdir(dir, { recursive: true })
      const file = fileOf(dir, manifestDigest)
      const kept: KeptManifest = { target, manifestDigest, keptAt: new Date().toISOString(), manifest }
      // Written beside and renamed: a reader never sees half a manifest.
      await writeFile(`${file}.tmp`, JSON.stringify(kept))
      await rename(`${file}.tmp`, file)
      await prune()
    },
    async get (manifestDigest) {
      const file = fileOf(dir, manifestDigest)
      let text: string
      try { text = await readFile(file, 'utf8') } catch { return undefined }
      const s = await stat(file).catch(() => undefined)
      if (s == null || Date.now() - s.mtimeMs > limits.maxAgeMs) return undefined
      try {
        return JSON.parse(text) as KeptManifest
      } catch (err) {
        log.warn({ err, file }, 'a kept file manifest is damaged; dropping it')
        await rm(file, { force: true })
        return undefined
      }
    },
    prune
  }
}

/**
 * Wraps a rebuilder so that every successful rebuild leaves its file manifest with `keeper`:
 * the OCI tarball is read once, in the rebuild's own workspace, before it is removed. With
 * `outputs`, the tarball itself is kept too.
 */
export function keepingManifests (rebuilder: Rebuilder, keeper: ManifestKeeper, log: Logger, outputs?: OutputKeeper): Rebuilder {
  return {
    checkEngine: async () => await rebuilder.checkEngine(),
    capabilities: async () => await rebuilder.capabilities(),
    sweep: async () => await rebuilder.sweep(),
    async rebuild (req, opts = {}) {
      return await rebuilder.rebuild(req, {
        ...opts,
        async onImage (tarPath, result, target) {
          await opts.onImage?.(tarPath, result, target)
          try {
            const manifest = await fileManifestOf(tarPath, req.platform).catch(async () => await fileManifestOf(tarPath))
            await keeper.put(target, result.manifestDigest, manifest)
          } catch (err) {
            log.warn({ err, target }, 'could not keep the file manifest of a rebuild')
          }
          if (outputs != null) {
            await outputs.put(result.manifestDigest, tarPath).catch((err: unknown) => { log.warn({ err, target }, 'could not keep the output of a rebuild') })
          }
        }
      })
    }
  }
}
