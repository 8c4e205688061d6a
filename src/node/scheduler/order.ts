import type { Claim } from '../../protocol/types.js'
import type { PlatformCapabilities, Recipe } from '../rebuilder/index.js'
import type { Job } from '../store/types.js'

/** Expected length of a build nothing was learned about: a Neko app on a native platform. */
export const UNKNOWN_BUILD_MS = 10 * 60_000
/** How much longer a build under binfmt emulation takes than a native one, when not learned. */
export const EMULATION_FACTOR = 6
/** Variants whose durations are remembered: the oldest learned go first. */
const MAX_LEARNED = 1024

/**
 * What a node knows of its builds ahead of them: how long each variant took (from earlier
 * claims, any node's, of the same variant and platform, native or emulated) and which variants
 * are bases (named in a recipe's `from`, or in a claim's `bases`).
 */
export class BuildFacts {
  private readonly durations = new Map<string, number>()
  private readonly bases = new Set<string>()
  /** Recipes rebuilds followed, by digest (a repository's own is known only after a checkout). */
  private readonly recipes = new Map<string, Recipe>()

  learnRecipe (digest: string, recipe: Recipe): void {
    this.recipes.delete(digest)
    this.recipes.set(digest, recipe)
    if (this.recipes.size > 64) this.recipes.delete(this.recipes.keys().next().value as string)
  }

  recipe (digest: string): Recipe | undefined {
    return this.recipes.get(digest)
  }

  /** Learns from a claim: its build time (success only; a failure says little) and the bases it names. */
  learn (claim: Claim): void {
    const t = claim.target
    for (const b of claim.bases ?? []) this.remember(this.bases, `${t.repository}#${b.variant}`)
    if (claim.result == null) return
    const ms = Date.parse(claim.finishedOn) - Date.parse(claim.startedOn)
    if (!Number.isFinite(ms) || ms <= 0) return
    const key = durationKey(t.repository, t.variant, t.platform, claim.environment.emulated)
    this.durations.delete(key)
    this.durations.set(key, ms)
    while (this.durations.size > MAX_LEARNED) this.durations.delete(this.durations.keys().next().value as string)
  }

  private remember (set: Set<string>, key: string): void {
    set.add(key)
    if (set.size > MAX_LEARNED) set.delete(set.values().next().value as string)
  }

  /** Whether the job's variant is a base of others in its release. */
  isBase (job: Job, recipe: Recipe | null | undefined): boolean {
    const v = job.target.variant
    if (recipe?.variants.some(o => Object.values(o.from ?? {}).includes(v)) === true) return true
    return this.bases.has(`${job.target.repository}#${v}`)
  }

  /** The build's expected length on this node: learned for the variant, else a guess that puts emulation early. */
  expectedMs (job: Job, emulated: boolean): number {
    const { repository, variant, platform } = job.target
    const learned = this.durations.get(durationKey(repository, variant, platform, emulated))
    if (learned != null) return learned
    // The same variant learned the other way round, scaled.
    const other = this.durations.get(durationKey(repository, variant, platform, !emulated))
    if (other != null) return emulated ? other * EMULATION_FACTOR : other / EMULATION_FACTOR
    return UNKNOWN_BUILD_MS * (emulated ? EMULATION_FACTOR : 1)
  }

  /**
   * The order queued jobs start in: bases first (every app of the release waits on them), then
   * the longest expected builds first (a long build started last sets the release's time), then
   * in the order they were queued.
   */
  order (jobs: Job[], recipeOf: (job: Job) => Recipe | null | undefined, caps: PlatformCapabilities | undefined): Job[] {
    const emulated = new Set(caps?.platforms.filter(p => p.emulated).map(p => p.platform) ?? [])
    const keyed = jobs.map(job => ({ job, base: this.isBase(job, recipeOf(job)), ms: this.expectedMs(job, emulated.has(job.target.platform)) }))
    keyed.sort((a, b) => a.base !== b.base
      ? (a.base ? -1 : 1)
      : a.ms !== b.ms ? b.ms - a.ms : a.job.updatedAt < b.job.updatedAt ? -1 : a.job.updatedAt > b.job.updatedAt ? 1 : 0)
    return keyed.map(k => k.job)
  }
}

function durationKey (repository: string, variant: string, platform: string, emulated: boolean): string {
  return `${repository}#${variant}@${platform}${emulated ? ' emulated' : ''}`
}
