import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { basename, join, resolve } from 'node:path'
import type Dockerode from 'dockerode'
import type { BaseRef, Claim, Failure, ImageResult, RecipeRef, Target } from '../../protocol/types.js'
import { NekoError } from '../../protocol/errors.js'
import { LIMITS } from '../../protocol/limits.js'
import { targetKey } from '../../protocol/target.js'
import { componentLog, type ComponentLogger, type Logger } from '../logger.js'
import { makeDir } from '../make-dir.js'
import { BaseCache, type BuiltBase } from './bases.js'
import { BuildLog } from './build-log.js'
import { runBuildx, type BuildProgress } from './buildx.js'
import { classifyBuildLog, logExcerpt } from './classify.js'
import { capabilitiesOf, checkEngine, unknownEnvironment, type Capabilities, type EngineInfo } from './engine.js'
import { EngineNotReadyError, RecipeError, RequirementsError, SourceError, TargetError } from './errors.js'
import { clearStaleLocks, lockOnEngine, type EngineLock } from './engine-lock.js'
import { holderGone, holderTag } from './holder.js'
import { extractOciArchive } from './layout.js'
import { imageResultOf, readOciArchive } from './oci.js'
import { runPrepareStep } from './prepare.js'
import { planRebuild, variantFor, type RebuildPlan } from './plan.js'
import { findVariant, loadRecipe, recipeDigest, unmetRequirements, type Recipe, type Variant } from './recipe.js'
import { cannotRunSmoke, runSmokeTest, type SmokeOutcome } from './smoke.js'
import { checkout } from './source.js'
import { resolvesInside } from './paths.js'

export interface RebuilderInit {
  /** Workspaces (checkouts, tarballs) and build logs go under here. */
  workDir: string
  /** Whole rebuild, source to digests; 2 hours by default. */
  timeoutMs?: number
  /** The docker CLI that runs buildx; `docker` by default. */
  dockerCli?: string
  /**
   * The engine to build on, `unix:///path/docker.sock` (a node's own engine, src/node/engines);
   * DOCKER_HOST or the default socket when not given.
   */
  dockerHost?: string
  /** Keep each rebuild's workspace (checkout, tarballs) for inspection. */
  keepWorkspaces?: boolean
  /** Build logs kept under `workDir/logs` (rebuilds without `outDir`); the oldest go first. Default 200. */
  maxLogs?: number
  /**
   * `from` bases kept built (tarball and layout) for the apps built on them; the least
   * recently used go first. Default 8: a Neko release has two bases on two platforms.
   */
  maxBases?: number
}

export interface RebuilderComponents {
  docker?: Dockerode
  /** Where the engine logs; silent without one. */
  logger?: ComponentLogger
}

export interface RebuildRequest {
  /** git URL or local path */
  repository: string
  /** tag or commit */
  ref: string
  /** Refuse (source-error) when `ref` does not point to this commit. */
  expectedCommit?: string
  /**
   * `neko`, a recipe file, the recipe itself (already resolved by the caller), or undefined:
   * the repository's own `neko-rebuilder.json`, else its root Dockerfile as variant `default`.
   */
  recipe?: string | Recipe
  variant?: string
  platform: string
  /** Keep the OCI tarball (and the build log) here. */
  outDir?: string
}

export interface RebuildOptions {
  signal?: AbortSignal
  onProgress?: (p: BuildProgress) => void
  log?: Logger
  /**
   * Reads the OCI tarball of a successful rebuild before the workspace is removed (to keep
   * its file manifest). Its failure is logged; the rebuild's outcome stands.
   */
  onImage?: (tarPath: string, result: ImageResult, target: Target) => Promise<void>
}

export interface RebuildOutcome {
  /** Unsigned; `result` on success, `failure` otherwise. */
  claim: Claim
  /** The OCI tarball, when `outDir` was given and the build succeeded. */
  ociPath?: string
  /** The full build log (plain progress of every step). */
  logPath?: string
  /**
   * Set when the rebuild stopped before it had a commit to build: the engine did not answer
   * (or this user may not open its socket), or the ref did not resolve. The error itself: a
   * person asking for one rebuild gets it, not a claim about no build. The claim is still
   * made: a node asked for an announced commit judges it as it judges every claim.
   */
  notStarted?: NekoError
  /** The variant's smoke test run in the rebuilt image, when it has one and this engine can run it. */
  smoke?: SmokeOutcome
  /** The recipe the rebuild followed, once known (a repository's own is known after checkout). */
  recipe?: Recipe
}

export interface Rebuilder {
  checkEngine: () => Promise<EngineInfo>
  capabilities: () => Promise<Capabilities>
  rebuild: (req: RebuildRequest, opts?: RebuildOptions) => Promise<RebuildOutcome>
  /**
   * Removes what rebuilds of processes that are gone left behind (killed with -9): their
   * workspaces under `workDir` and their build locks on the engine. Run at a node's start.
   */
  sweep: () => Promise<{ workspaces: number, locks: number }>
}

/** In each workspace: who made it (holder.ts), so a later sweep knows whether it is abandoned. */
const HOLDER_FILE = '.neko-rebuilder-holder'

const DEFAULT_TIMEOUT_MS = 2 * 60 * 60_000
/** Engine facts change with upgrades, not between builds; a dead engine still shows up as a classified build failure. */
const ENGINE_CACHE_MS = 5 * 60_000
/** Commit recorded when the ref never resolved: git's null object id. */
export const UNRESOLVED_COMMIT = '0'.repeat(40)
/** Digest recorded when the recipe could not be resolved (sha256 of empty input). */
const UNRESOLVED_RECIPE = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

/** A build problem that ends the rebuild with a failure claim instead of an exception. */
class RebuildFailed extends Error {
  /** `notStarted`: the error that stopped the rebuild before it had a commit to build. */
  constructor (readonly failure: Failure, readonly notStarted?: NekoError) { super(failure.message) }
}

function fileSafe (s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-')
}

/** Named build context for a `from` base: buildx matches it against `FROM ${ARG}`. */
function baseContextName (variant: string): string {
  return `neko-rebuilder-from-${variant.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`
}

/** What every variant build of one rebuild shares: the target's bases and the target itself. */
interface VariantSetting {
  /** The checkout. */
  src: string
  platform: string
  /** SOURCE_DATE_EPOCH: the commit's time. */
  epoch: number
  buildLog: BuildLog
  signal: AbortSignal
  progress: (p: Omit<BuildProgress, 'elapsedMs'>) => void
}

/** The bases a variant is built `from`: a build arg naming each, and the flags that hand them over. */
interface BaseInputs {
  args: Record<string, string>
  flags: string[]
}

class DefaultRebuilder implements Rebuilder {
  private readonly docker: Dockerode
  private readonly cli: string
  /** The CLI's environment: DOCKER_HOST names the engine when one was given. */
  private readonly cliEnv: NodeJS.ProcessEnv
  private readonly workDir: string
  private readonly timeoutMs: number
  private readonly keep: boolean
  private readonly maxLogs: number
  private readonly log: Logger
  private readonly bases: BaseCache
  private cached?: { at: number, info: EngineInfo }

  constructor (components: RebuilderComponents, init: RebuilderInit) {
    // Loaded when an engine is made, not with the index: commands that only read recipes or
    // manifests through it (status, attest, announce) do not load the Docker client.
    const socketPath = init.dockerHost?.startsWith('unix://') === true ? init.dockerHost.slice('unix://'.length) : undefined
    if (init.dockerHost != null && socketPath == null) throw new TypeError(`dockerHost ${init.dockerHost}: only unix:// sockets are supported`)
    this.docker = components.docker ?? new (createRequire(import.meta.url)('dockerode') as typeof Dockerode)(socketPath != null ? { socketPath } : undefined)
    this.cli = init.dockerCli ?? 'docker'
    this.cliEnv = init.dockerHost != null ? { ...process.env, DOCKER_HOST: init.dockerHost } : process.env
    this.workDir = resolve(init.workDir)
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.keep = init.keepWorkspaces ?? false
    this.maxLogs = init.maxLogs ?? 200
    this.log = componentLog(components.logger, 'rebuilder')
    this.bases = new BaseCache(this.workDir, Math.max(1, init.maxBases ?? 8), HOLDER_FILE, holderTag)
  }

  async checkEngine (): Promise<EngineInfo> {
    const info = await checkEngine(this.docker, this.cli, undefined, this.cliEnv)
    this.cached = { at: Date.now(), info }
    return info
  }

  async capabilities (): Promise<Capabilities> {
    return capabilitiesOf(await this.engine())
  }

  private async engine (): Promise<EngineInfo> {
    if (this.cached != null && Date.now() - this.cached.at < ENGINE_CACHE_MS) return this.cached.info
    return await this.checkEngine()
  }

  async rebuild (req: RebuildRequest, opts: RebuildOptions = {}): Promise<RebuildOutcome> {
    const log = opts.log ?? this.log
    const started = Date.now()
    const startedOn = new Date(started).toISOString()
    const timeout = AbortSignal.timeout(this.timeoutMs)
    const signal = opts.signal != null ? AbortSignal.any([opts.signal, timeout]) : timeout

    // Usage errors throw before anything is fetched.
    const plan: RebuildPlan = await planRebuild(req)
    let recipe: Recipe | undefined = plan.resolved?.recipe
    let variant: Variant | undefined = plan.resolved?.variant

    await makeDir(this.workDir)
    const workspace = await mkdtemp(join(this.workDir, 'rebuild-'))
    await writeFile(join(workspace, HOLDER_FILE), holderTag())
    const logDir = plan.outDir != null ? resolve(plan.outDir) : join(this.workDir, 'logs')
    await makeDir(logDir)
    // Tag (or commit), variant and platform: an operator finds a target's log by name.
    const stem = `${fileSafe(plan.ref).slice(0, 64)}-${fileSafe(plan.variantName ?? variant?.name ?? 'default')}-${fileSafe(plan.platform)}-${Date.now()}-${basename(workspace).slice(-6)}`
    const logFile = join(logDir, `${stem}.log`)
    const buildLog = new BuildLog(logFile)
    const progress = (p: Omit<BuildProgress, 'elapsedMs'>): void => opts.onProgress?.({ ...p, elapsedMs: Date.now() - started, logPath: logFile })

    let recipeRef: RecipeRef = recipe != null ? { name: recipe.name, digest: recipeDigest(recipe) } : { name: 'repository', digest: UNRESOLVED_RECIPE }
    const target: Target = { repository: plan.repository, commit: plan.expectedCommit?.toLowerCase() ?? UNRESOLVED_COMMIT, variant: plan.variantName ?? variant?.name ?? 'default', platform: plan.platform }
    let sourceDateEpoch = 0
    let environment = { ...unknownEnvironment(), emulated: false }
    let ociPath: string | undefined
    let baseRefs: BaseRef[] = []
    /** Bases this rebuild holds in the cache; let go when it ends. */
    const held: Array<() => void> = []
    let lock: EngineLock | undefined
    /** The tarball asked for in `outDir`; removed unless the rebuild succeeded. */
    let outTar: string | undefined

    const finish = (body: Pick<Claim, 'result'> | Pick<Claim, 'failure'>): RebuildOutcome => {
      if ('failure' in body && body.failure != null) body = { failure: boundFailure(body.failure) }
      const chain = 'result' in body && baseRefs.length > 0 ? { bases: baseRefs } : {}
      const claim: Claim = { target, sourceDateEpoch, recipe: recipeRef, environment, startedOn, finishedOn: new Date().toISOString(), ...body, ...chain }
      return { claim, logPath: logFile, ...(ociPath != null && 'result' in body ? { ociPath } : {}) }
    }

    try {
      let engine: EngineInfo
      try {
        engine = await this.engine()
      } catch (err) {
        if (err instanceof EngineNotReadyError) throw new RebuildFailed({ class: 'infrastructure-error', message: err.message }, err)
        throw err
      }
      const caps = capabilitiesOf(engine)
      environment = { ...caps.environment, emulated: caps.platforms.find(p => p.platform === plan.platform)?.emulated ?? false }
      if (variant != null) this.checkRequirements(variant, caps, plan.platform)

      progress({ phase: 'source', variant: target.variant })
      const src = join(workspace, 'src')
      buildLog.write(`# fetching ${plan.ref} from ${plan.repository}\n`)
      let resolved
      try {
        resolved = await checkout(plan.repository, plan.ref, src, { expectedCommit: plan.expectedCommit, signal })
      } catch (err) {
        if (err instanceof SourceError) throw new RebuildFailed({ class: 'source-error', message: err.message }, err)
        throw err
      }
      target.commit = resolved.commit
      if (resolved.tag != null) target.tag = resolved.tag
      sourceDateEpoch = resolved.commitTime
      buildLog.write(`# commit ${resolved.commit}, SOURCE_DATE_EPOCH=${sourceDateEpoch}\n`)

      if (recipe == null) {
        try {
          recipe = await loadRecipe(undefined, src, { platform: plan.platform })
        } catch (err) {
          // The release's own recipe file is part of its source.
          if (err instanceof RecipeError) throw new RebuildFailed({ class: 'source-error', message: `the repository's recipe file: ${err.message}` })
          throw err
        }
        recipeRef = { name: recipe.name, digest: recipeDigest(recipe) }
        variant = variantFor(recipe, plan.variantName, plan.platform)
        target.variant = variant.name
        this.checkRequirements(variant, caps, plan.platform)
      }
      if (variant == null) throw new TargetError('no variant')
      // Builds of one target on one engine must not share in-flight steps (engine-lock.ts).
      lock = await lockOnEngine(this.docker, targetKey(target), { holdMs: this.timeoutMs + 60_000, signal, log })

      const setting: VariantSetting = { src, platform: plan.platform, epoch: sourceDateEpoch, buildLog, signal, progress }
      // Bases first (`from`): each is built once per commit and platform on this engine, and
      // every app on it is built on that same output, handed over by digest.
      const built = async (base: Variant): Promise<{ base: BuiltBase, reused: boolean }> => {
        const key = BaseCache.key({ repository: plan.repository, commit: resolved.commit, recipeDigest: recipeRef.digest, variant: base.name, platform: plan.platform })
        const use = await this.bases.use(key, async dir => {
          const tar = join(dir, `${fileSafe(base.name)}.oci.tar`)
          const result = await this.buildVariant(base, tar, setting)
          const layout = join(dir, 'layout')
          await extractOciArchive(tar, layout)
          return { tar, layout, result }
        })
        held.push(use.release)
        if (use.reused) buildLog.write(`# ${base.name}: built earlier for this commit and platform, manifest ${use.base.result.manifestDigest}\n`)
        return use
      }
      const bases: BaseInputs = { args: {}, flags: [] }
      for (const [arg, baseName] of Object.entries(variant.from ?? {})) {
        const base = findVariant(recipe, baseName)
        const { base: out, reused } = await built(base)
        const name = baseContextName(base.name)
        bases.flags.push('--build-context', `${name}=oci-layout://${out.layout}@${out.result.manifestDigest}`)
        bases.args[arg] = name
        baseRefs.push({ variant: base.name, manifestDigest: out.result.manifestDigest })
        log.info({ base: base.name, manifest: out.result.manifestDigest, reused }, reused ? 'base variant built earlier; reused' : 'base variant built')
      }
      baseRefs = baseRefs.filter((b, i) => baseRefs.findIndex(o => o.variant === b.variant) === i)

      const outDir = plan.outDir != null ? resolve(plan.outDir) : undefined
      let tarPath = join(outDir ?? workspace, `${fileSafe(variant.name)}-${fileSafe(plan.platform)}-${resolved.commit.slice(0, 12)}.oci.tar`)
      if (outDir != null) outTar = tarPath
      let info: ImageResult
      if (recipe.variants.some(v => Object.values(v.from ?? {}).includes(variant?.name ?? ''))) {
        // A base of others: its own target is the very build its apps are built on.
        const { base: out } = await built(variant)
        info = out.result
        if (outDir != null) await copyFile(out.tar, tarPath)
        else tarPath = out.tar
      } else {
        info = await this.buildVariant(variant, tarPath, setting, bases)
      }
      if (outDir != null) ociPath = tarPath
      log.info({ variant: variant.name, platform: plan.platform, manifest: info.manifestDigest }, 'rebuilt')
      if (opts.onImage != null) {
        await opts.onImage(tarPath, info, target).catch((err: unknown) => { log.warn({ err }, 'reading the rebuilt image failed') })
      }
      const smoke = await this.smokeTest(variant, engine, tarPath, buildLog, signal, log)
      return { ...finish({ result: info }), recipe, ...(smoke != null ? { smoke } : {}) }
    } catch (err) {
      if (opts.signal?.aborted === true) throw opts.signal.reason
      if (timeout.aborted) {
        return finish({ failure: { class: 'timeout', message: `the rebuild did not finish within ${Math.round(this.timeoutMs / 1000)} s`, logExcerpt: logExcerpt(buildLog.text()) } })
      }
      if (err instanceof RebuildFailed) {
        // Before a build there is nothing to report beyond the error its caller gets.
        log[err.notStarted != null ? 'debug' : 'warn']({ failure: err.failure.class, message: err.failure.message }, 'rebuild failed')
        const outcome = finish({ failure: err.failure })
        return err.notStarted != null ? { ...outcome, notStarted: err.notStarted } : outcome
      }
      if (err instanceof TargetError || err instanceof RequirementsError || err instanceof RecipeError) throw err
      // Anything else (a file system error, an engine call that failed mid-way) is the machine's
      // problem, not the release's: report it as such rather than leaving the target unanswered.
      log.error({ err }, 'rebuild stopped by an unexpected error')
      return finish({ failure: { class: 'infrastructure-error', message: `unexpected: ${(err as Error).message ?? String(err)}` } })
    } finally {
      // A failed or cancelled build leaves no empty or partial tarball behind for anyone to take.
      if (outTar != null && ociPath == null) await rm(outTar, { force: true })
      for (const release of held) release()
      await lock?.release()
      await buildLog.close()
      if (!this.keep) await rm(workspace, { recursive: true, force: true })
      if (plan.outDir == null) await pruneLogs(logDir, this.maxLogs).catch(() => {})
    }
  }

  async sweep (): Promise<{ workspaces: number, locks: number }> {
    let workspaces = 0
    const names = await readdir(this.workDir).catch(() => [] as string[])
    // `bases-`: the base cache of a process (bases.ts), kept with the same holder file.
    for (const name of names.filter(n => n.startsWith('rebuild-') || n.startsWith('bases-'))) {
      const dir = join(this.workDir, name)
      const holder = await readFile(join(dir, HOLDER_FILE), 'utf8').catch(() => undefined)
      // Without a holder file the process died between mkdtemp and writing it; give it a minute.
      if (holder == null && Date.now() - (await stat(dir).then(s => s.mtimeMs, () => 0)) < 60_000) continue
      if (holder != null && !holderGone(holder)) continue
      await rm(dir, { recursive: true, force: true })
      workspaces++
      this.log.info({ dir, holder }, 'removed the workspace of a rebuild whose process is gone')
    }
    const locks = await clearStaleLocks(this.docker, this.log).catch((err: unknown) => {
      this.log.warn({ err }, 'could not look for stale build locks on the engine')
      return 0
    })
    return { workspaces, locks }
  }

  /** The variant's smoke test in the image just built, where this engine can run it. Its own failure to run is logged, never a FAILED test. */
  private async smokeTest (variant: Variant, engine: EngineInfo, tarPath: string, buildLog: BuildLog, signal: AbortSignal, log: Logger): Promise<SmokeOutcome | undefined> {
    if (variant.smoke == null) return undefined
    const why = cannotRunSmoke(variant.smoke, engine)
    if (why != null) {
      buildLog.write(`# smoke test not run: ${why}\n`)
      log.info({ variant: variant.name, reason: why }, 'smoke test not run')
      return undefined
    }
    try {
      const out = await runSmokeTest(this.docker, engine, tarPath, variant.smoke, { log: buildLog, signal })
      log.info({ variant: variant.name, result: out.result, exitCode: out.exitCode }, 'smoke test run')
      return out
    } catch (err) {
      if (signal.aborted) throw err
      log.warn({ err, variant: variant.name }, 'the smoke test could not be run')
      return undefined
    }
  }

  private checkRequirements (variant: Variant, caps: Capabilities, platform: string): void {
    const missing = unmetRequirements(variant, caps, platform)
    if (missing.length > 0) throw new RequirementsError(`cannot rebuild ${variant.name} for ${platform}: this node lacks ${missing.join('; ')}`)
  }

  /** Prepare steps, then one buildx build to an OCI tarball, then its digests. Build problems throw RebuildFailed. */
  private async buildVariant (variant: Variant, tarPath: string, setting: VariantSetting, bases: BaseInputs = { args: {}, flags: [] }): Promise<ImageResult> {
    const { src, platform, epoch, buildLog, signal, progress } = setting
    for (const [i, step] of (variant.prepare ?? []).entries()) {
      const name = `prepare ${i + 1}: ${step.command.join(' ')}`
      progress({ phase: 'prepare', variant: variant.name, step: name })
      buildLog.write(`# ${name} (${step.image})\n`)
      let res
      try {
        res = await runPrepareStep(this.docker, step, { checkoutDir: src, log: buildLog, signal })
      } catch (err) {
        if (signal.aborted) throw err
        if (err instanceof SourceError) throw new RebuildFailed({ class: 'source-error', message: `${name}: ${err.message}` })
        throw new RebuildFailed({ class: 'infrastructure-error', message: `${name}: ${(err as Error).message}` })
      }
      if (signal.aborted) throw new Error('aborted')
      if (res.exitCode !== 0) throw new RebuildFailed({ class: 'build-failed', message: `${name} exited with ${res.exitCode}`, step: name })
    }

    const dockerfile = join(src, variant.build.dockerfile)
    const context = join(src, variant.build.context)
    for (const [what, rel] of [['Dockerfile', variant.build.dockerfile], ['build context', variant.build.context]] as const) {
      if (!await resolvesInside(src, rel)) throw new RebuildFailed({ class: 'source-error', message: `${what} ${rel} resolves outside the checkout (a symlink in the repository)` })
    }
    if (!await stat(dockerfile).then(s => s.isFile(), () => false)) {
      throw new RebuildFailed({ class: 'source-error', message: `${variant.build.dockerfile} does not exist in the commit (variant ${variant.name})` })
    }
    if (!await stat(context).then(s => s.isDirectory(), () => false)) {
      throw new RebuildFailed({ class: 'source-error', message: `build context ${variant.build.context} is not a directory in the commit (variant ${variant.name})` })
    }
    const args = buildxArgs({ platform, epoch, tarPath, dockerfile, context, target: variant.build.target, args: { ...variant.build.args, ...bases.args }, extraFlags: bases.flags })
    buildLog.write(`# ${this.cli} ${args.join(' ')}\n`)
    progress({ phase: 'build', variant: variant.name })
    buildLog.steps.clear()
    const res = await runBuildx({
      cli: this.cli,
      args,
      cwd: src,
      env: { ...this.cliEnv, SOURCE_DATE_EPOCH: String(epoch), BUILDKIT_PROGRESS: 'plain' },
      log: buildLog,
      signal,
      onStep: (stepIndex, step) => progress({ phase: 'build', variant: variant.name, stepIndex, step })
    })
    if (res.aborted) throw new Error('aborted')
    if (res.spawnError != null) throw new RebuildFailed({ class: 'infrastructure-error', message: `cannot run ${this.cli}: ${res.spawnError.message}` })
    if (res.exitCode !== 0) {
      throw new RebuildFailed(classifyBuildLog(buildLog.text(), res.exitCode, buildLog.steps))
    }
    progress({ phase: 'read', variant: variant.name })
    try {
      return imageResultOf(await readOciArchive(tarPath), platform)
    } catch (err) {
      if (err instanceof NekoError) throw new RebuildFailed({ class: 'infrastructure-error', message: `the exported image cannot be read: ${err.message}` })
      throw err
    }
  }
}

/** Keeps the newest `max` logs in `dir`: a long-running node must not fill its disk with them. */
async function pruneLogs (dir: string, max: number): Promise<void> {
  const names = (await readdir(dir)).filter(n => n.endsWith('.log'))
  if (names.length <= max) return
  const dated = await Promise.all(names.map(async n => ({ n, t: (await stat(join(dir, n))).mtimeMs })))
  dated.sort((a, b) => a.t - b.t)
  for (const { n } of dated.slice(0, dated.length - max)) await rm(join(dir, n), { force: true })
}

/** Failure fields as the wire bounds them (LIMITS.failureMessageLength, stepLength, logExcerptLength). */
function boundFailure (f: Failure): Failure {
  const cut = (s: string, n: number): string => s.length > n ? `${s.slice(0, n - 3)}...` : s
  return {
    class: f.class,
    message: cut(f.message, LIMITS.failureMessageLength),
    ...(f.step != null ? { step: cut(f.step, LIMITS.stepLength) } : {}),
    ...(f.logExcerpt != null ? { logExcerpt: f.logExcerpt.slice(-LIMITS.logExcerptLength) } : {})
  }
}

export interface BuildxArgsInput {
  platform: string
  epoch: number
  tarPath: string
  dockerfile: string
  context: string
  target?: string
  args?: Record<string, string>
  extraFlags?: string[]
}

/** The one buildx command line of a rebuild; the benchmark runs the same one bare. */
export function buildxArgs (i: BuildxArgsInput): string[] {
  const args = [
    'buildx', 'build', '--no-cache', '--provenance=false', '--sbom=false', '--progress=plain',
    '--platform', i.platform,
    '--build-arg', `SOURCE_DATE_EPOCH=${i.epoch}`,
    '--output', `type=oci,dest=${i.tarPath},rewrite-timestamp=true`,
    '-f', i.dockerfile
  ]
  if (i.target != null) args.push('--target', i.target)
  for (const [k, v] of Object.entries(i.args ?? {})) args.push('--build-arg', `${k}=${v}`)
  args.push(...(i.extraFlags ?? []), i.context)
  return args
}

export function createRebuilder (components: RebuilderComponents, init: RebuilderInit): Rebuilder {
  return new DefaultRebuilder(components, init)
}
