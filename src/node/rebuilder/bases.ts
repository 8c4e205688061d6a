import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ImageResult } from '../../protocol/types.js'
import { makeDir } from '../make-dir.js'

/** A `from` base built once: its OCI tarball, that tarball unpacked (a build context), and its digests. */
export interface BuiltBase {
  tar: string
  layout: string
  result: ImageResult
}

interface Entry {
  /** The directory holding the tarball and layout. */
  dir: string
  built: Promise<BuiltBase>
  /** Rebuilds using it now: never evicted under them. */
  users: number
  lastUsed: number
}

/**
 * The `from` bases this engine built, so that every app of a release is built on the one
 * base built for its commit and platform rather than on a fresh base of its own (a Neko base
 * build is most of an app's). In memory, with the files under one directory of the work dir
 * (swept like a workspace when the process is gone); at most `max` kept, the least recently
 * used go first.
 */
export class BaseCache {
  private readonly entries = new Map<string, Entry>()

  constructor (private readonly workDir: string, private readonly max: number, private readonly holderFile: string, private readonly holder: () => string) {}

  /** What makes two bases the same build: source, recipe, variant and platform. */
  static key (k: { repository: string, commit: string, recipeDigest: string, variant: string, platform: string }): string {
    return JSON.stringify([k.repository, k.commit, k.recipeDigest, k.variant, k.platform])
  }

  /** Whether the base is built (or being built) here. */
  has (key: string): boolean {
    return this.entries.has(key)
  }

  /**
   * The base under `key`, built by `build(dir)` (which writes its tarball and layout in `dir`)
   * when no rebuild built it or is building it; callers of one key at once share one build. A
   * failed build is forgotten, so the next rebuild tries again. `release` when done with it.
   */
  async use (key: string, build: (dir: string) => Promise<BuiltBase>): Promise<{ base: BuiltBase, reused: boolean, release: () => void }> {
    let entry = this.entries.get(key)
    const reused = entry != null
    if (entry == null) {
      // Set before anything is awaited: a second caller of the key finds it and waits.
      const created: Entry = { dir: '', users: 0, lastUsed: Date.now(), built: Promise.resolve(undefined as unknown as BuiltBase) }
      created.built = (async () => {
        created.dir = await mkdtemp(join(await this.rootDir(), 'base-'))
        return await build(created.dir)
      })()
      created.built.catch(async () => {
        if (this.entries.get(key) === created) this.entries.delete(key)
        if (created.dir !== '') await rm(created.dir, { recursive: true, force: true })
      })
      this.entries.set(key, created)
      entry = created
    }
    const held = entry
    held.users++
    held.lastUsed = Date.now()
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      held.users--
      held.lastUsed = Date.now()
      void this.evict()
    }
    try {
      return { base: await held.built, reused, release }
    } catch (err) {
      release()
      throw err
    }
  }

  private root?: Promise<string>

  private async rootDir (): Promise<string> {
    this.root ??= (async () => {
      await makeDir(this.workDir)
      const root = await mkdtemp(join(this.workDir, 'bases-'))
      await writeFile(join(root, this.holderFile), this.holder())
      return root
    })()
    return await this.root
  }

  /** Drops the least recently used bases nobody uses beyond `max`. */
  private async evict (): Promise<void> {
    const idle = [...this.entries].filter(([, e]) => e.users === 0).sort(([, a], [, b]) => a.lastUsed - b.lastUsed)
    let over = this.entries.size - this.max
    for (const [key, e] of idle) {
      if (over <= 0) break
      this.entries.delete(key)
      over--
      await rm(e.dir, { recursive: true, force: true })
    }
  }
}
