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
import { extractOciArchive, imageResultOf, readOciArchive } from '../oci/index.js'
import { runPrepareStep } from './prepare.js'
import { planRebuild, resolveAfterCheckout, type RebuildPlan, type RebuildRequest } from './plan.js'
import { findVariant, recipeDigest, unmetRequirements, type Recipe, type Variant } from './recipe.js'
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

/** One rebuild in progress: what its steps share, and the claim's facts as they become known. */
interface RebuildRun {
  plan: RebuildPlan
  log: Logger
  workspace: string
  logDir: string
  logFile: string
  buildLog: BuildLog
  /** The whole rebuild's own limit, told apart from the caller's cancel. */
  timeout: AbortSignal
  signal: AbortSignal
  progress: (p: Omit<BuildProgress, 'elapsedMs'>) => void
  target: Target
  recipeRef: RecipeRef
  sourceDateEpoch: number
  environment: Claim['environment']
  /** The engine as it answered (step 1). */
  engine?: EngineInfo
  /** The bases the target was built on, named in its claim. */
  baseRefs: BaseRef[]
  /** Bases this rebuild holds in the cache; let go when it ends. */
  held: Array<() => void>
  lock?: EngineLock
  /** The target's tarball once built (in `outDir` or the workspace). */
  tarPath?: string
  /** The tarball asked for in `outDir`; removed unless the rebuild succeeded. */
  outTar?: string
  /** The tarball kept for the caller: set once the build succeeded into `outDir`. */
  ociPath?: string
  finish: (body: { result: ImageResult } | { failure: Failure }) => RebuildOutcome
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
    // Usage errors throw before anything is fetched.
    const plan = await planRebuild(req)
    const run = await this.openRun(plan, opts)
    try {
      const caps = await this.engineFor(run)
      const checkoutDir = await this.fetchSource(run)
      const { recipe, variant } = await this.resolveRecipe(run, checkoutDir, caps)
      // Builds of one target on one engine must not share in-flight steps (engine-lock.ts).
      run.lock = await lockOnEngine(this.docker, targetKey(run.target), { holdMs: this.timeoutMs + 60_000, signal: run.signal, log: run.log })
      const setting: VariantSetting = { src: checkoutDir, platform: plan.platform, epoch: run.sourceDateEpoch, buildLog: run.buildLog, signal: run.signal, progress: run.progress }
      const bases = await this.buildBases(run, recipe, variant, setting)
      const info = await this.buildTarget(run, recipe, variant, setting, bases)
      if (opts.onImage != null && run.tarPath != null) {
        await opts.onImage(run.tarPath, info, run.target).catch((err: unknown) => { run.log.warn({ err }, 'reading the rebuilt image failed') })
      }
      const smoke = await this.smokeTest(run, variant)
      return { ...run.finish({ result: info }), recipe, ...(smoke != null ? { smoke } : {}) }
    } catch (err) {
      return this.failed(run, err, opts)
    } finally {
      await this.closeRun(run)
    }
  }

  /** Step 0: the workspace, the build log and the claim's facts as far as the plan knows them. */
  private async openRun (plan: RebuildPlan, opts: RebuildOptions): Promise<RebuildRun> {
    const started = Date.now()
    const timeout = AbortSignal.timeout(this.timeoutMs)
    await makeDir(this.workDir)
    const workspace = await mkdtemp(join(this.workDir, 'rebuild-'))
    await writeFile(join(workspace, HOLDER_FILE), holderTag())
    const logDir = plan.outDir != null ? resolve(plan.outDir) : join(this.workDir, 'logs')
    await makeDir(logDir)
    const variantName = plan.variantName ?? plan.resolved?.variant.name ?? 'default'
    // Tag (or commit), variant and platform: an operator finds a target's log by name.
    const stem = `${fileSafe(plan.ref).slice(0, 64)}-${fileSafe(variantName)}-${fileSafe(plan.platform)}-${Date.now()}-${basename(workspace).slice(-6)}`
    const logFile = join(logDir, `${stem}.log`)
    const recipe = plan.resolved?.recipe
    const run: RebuildRun = {
      plan,
      log: opts.log ?? this.log,
      workspace,
      logDir,
      logFile,
      buildLog: new BuildLog(logFile),
      timeout,
      signal: opts.signal != null ? AbortSignal.any([opts.signal, timeout]) : timeout,
      progress: (p) => opts.onProgress?.({ ...p, elapsedMs: Date.now() - started, logPath: logFile }),
      target: { repository: plan.repository, commit: plan.expectedCommit?.toLowerCase() ?? UNRESOLVED_COMMIT, variant: variantName, platform: plan.platform },
      recipeRef: recipe != null ? { name: recipe.name, digest: recipeDigest(recipe) } : { name: 'repository', digest: UNRESOLVED_RECIPE },
      sourceDateEpoch: 0,
      environment: { ...unknownEnvironment(), emulated: false },
      baseRefs: [],
      held: [],
      finish: (body) => {
        const base = { target: run.target, sourceDateEpoch: run.sourceDateEpoch, recipe: run.recipeRef, environment: run.environment, startedOn: new Date(started).toISOString(), finishedOn: new Date().toISOString() }
        const claim: Claim = 'result' in body ? { ...base, result: body.result, ...(run.baseRefs.length > 0 ? { bases: run.baseRefs } : {}) } : { ...base, failure: boundFailure(body.failure) }
        return { claim, logPath: logFile, ...(run.ociPath != null && 'result' in body ? { ociPath: run.ociPath } : {}) }
      }
    }
    return run
  }

  /** Step 1: the engine answers, and the claim records what it is. */
  private async engineFor (run: RebuildRun): Promise<Capabilities> {
    let engine: EngineInfo
    try {
      engine = await this.engine()
    } catch (err) {
      if (err instanceof EngineNotReadyError) throw new RebuildFailed({ class: 'infrastructure-error', message: err.message }, err)
      throw err
    }
    run.engine = engine
    const caps = capabilitiesOf(engine)
    const { platform } = run.plan
    run.environment = { ...caps.environment, emulated: caps.platforms.find(p => p.platform === platform)?.emulated ?? false }
    if (run.plan.resolved != null) this.checkRequirements(run.plan.resolved.variant, caps, platform)
    return caps
  }

  /** Step 2: the commit, checked out; the claim gets its id, tag and time. Returns the checkout. */
  private async fetchSource (run: RebuildRun): Promise<string> {
    const { plan, buildLog } = run
    run.progress({ phase: 'source', variant: run.target.variant })
    const src = join(run.workspace, 'src')
    buildLog.write(`# fetching ${plan.ref} from ${plan.repository}\n`)
    let resolved
    try {
      resolved = await checkout(plan.repository, plan.ref, src, { expectedCommit: plan.expectedCommit, signal: run.signal })
    } catch (err) {
      if (err instanceof SourceError) throw new RebuildFailed({ class: 'source-error', message: err.message }, err)
      throw err
    }
    run.target.commit = resolved.commit
    if (resolved.tag != null) run.target.tag = resolved.tag
    run.sourceDateEpoch = resolved.commitTime
    buildLog.write(`# commit ${resolved.commit}, SOURCE_DATE_EPOCH=${run.sourceDateEpoch}\n`)
    return src
  }

  /** Step 3: the recipe and variant, from the plan or (once) from the checkout. */
  private async resolveRecipe (run: RebuildRun, checkoutDir: string, caps: Capabilities): Promise<{ recipe: Recipe, variant: Variant }> {
    if (run.plan.resolved != null) return run.plan.resolved
    let resolved
    try {
      resolved = await resolveAfterCheckout(run.plan, checkoutDir)
    } catch (err) {
      // The release's own recipe file is part of its source.
      if (err instanceof RecipeError) throw new RebuildFailed({ class: 'source-error', message: `the repository's recipe file: ${err.message}` })
      throw err
    }
    run.recipeRef = { name: resolved.recipe.name, digest: recipeDigest(resolved.recipe) }
    run.target.variant = resolved.variant.name
    this.checkRequirements(resolved.variant, caps, run.plan.platform)
    return resolved
  }

  /**
   * A `from` base of this commit and platform: built once on this engine (and kept, bases.ts),
   * so every app on it is built on that same output.
   */
  private async builtBase (run: RebuildRun, base: Variant, setting: VariantSetting): Promise<{ base: BuiltBase, reused: boolean }> {
    const key = BaseCache.key({ repository: run.plan.repository, commit: run.target.commit, recipeDigest: run.recipeRef.digest, variant: base.name, platform: run.plan.platform })
    const use = await this.bases.use(key, async dir => {
      const tar = join(dir, `${fileSafe(base.name)}.oci.tar`)
      const result = await this.buildVariant(base, tar, setting)
      const layout = join(dir, 'layout')
      await extractOciArchive(tar, layout)
      return { tar, layout, result }
    })
    run.held.push(use.release)
    if (use.reused) run.buildLog.write(`# ${base.name}: built earlier for this commit and platform, manifest ${use.base.result.manifestDigest}\n`)
    return use
  }

  /** Step 4: the bases a variant is built `from`, each built once per commit and platform and handed over by digest. */
  private async buildBases (run: RebuildRun, recipe: Recipe, variant: Variant, setting: VariantSetting): Promise<BaseInputs> {
    const bases: BaseInputs = { args: {}, flags: [] }
    for (const [arg, baseName] of Object.entries(variant.from ?? {})) {
      const base = findVariant(recipe, baseName)
      const { base: out, reused } = await this.builtBase(run, base, setting)
      const name = baseContextName(base.name)
      bases.flags.push('--build-context', `${name}=oci-layout://${out.layout}@${out.result.manifestDigest}`)
      bases.args[arg] = name
      if (!run.baseRefs.some(b => b.variant === base.name)) run.baseRefs.push({ variant: base.name, manifestDigest: out.result.manifestDigest })
      run.log.info({ base: base.name, manifest: out.result.manifestDigest, reused }, reused ? 'base variant built earlier; reused' : 'base variant built')
    }
    return bases
  }

  /** Step 5: the target's own variant, to the tarball asked for (`outDir`) or in the workspace. */
  private async buildTarget (run: RebuildRun, recipe: Recipe, variant: Variant, setting: VariantSetting, bases: BaseInputs): Promise<ImageResult> {
    const { plan } = run
    const outDir = plan.outDir != null ? resolve(plan.outDir) : undefined
    let tarPath = join(outDir ?? run.workspace, `${fileSafe(variant.name)}-${fileSafe(plan.platform)}-${run.target.commit.slice(0, 12)}.oci.tar`)
    if (outDir != null) run.outTar = tarPath
    let info: ImageResult
    if (recipe.variants.some(v => Object.values(v.from ?? {}).includes(variant.name))) {
      // A base of others: its own target is the very build its apps are built on.
      const { base: out } = await this.builtBase(run, variant, setting)
      info = out.result
      if (outDir != null) await copyFile(out.tar, tarPath)
      else tarPath = out.tar
    } else {
      info = await this.buildVariant(variant, tarPath, setting, bases)
    }
    run.tarPath = tarPath
    if (outDir != null) run.ociPath = tarPath
    run.log.info({ variant: variant.name, platform: plan.platform, manifest: info.manifestDigest }, 'rebuilt')
    return info
  }

  /** A rebuild that stopped: a failure claim, or the error itself for usage errors and cancellation. */
  private failed (run: RebuildRun, err: unknown, opts: RebuildOptions): RebuildOutcome {
    if (opts.signal?.aborted === true) throw opts.signal.reason
    if (run.timeout.aborted) {
      return run.finish({ failure: { class: 'timeout', message: `the rebuild did not finish within ${Math.round(this.timeoutMs / 1000)} s`, logExcerpt: logExcerpt(run.buildLog.text()) } })
    }
    if (err instanceof RebuildFailed) {
      // Before a build there is nothing to report beyond the error its caller gets.
      run.log[err.notStarted != null ? 'debug' : 'warn']({ failure: err.failure.class, message: err.failure.message }, 'rebuild failed')
      const outcome = run.finish({ failure: err.failure })
      return err.notStarted != null ? { ...outcome, notStarted: err.notStarted } : outcome
    }
    if (err instanceof TargetError || err instanceof RequirementsError || err instanceof RecipeError) throw err
    // Anything else (a file system error, an engine call that failed mid-way) is the machine's
    // problem, not the release's: report it as such rather than leaving the target unanswered.
    run.log.error({ err }, 'rebuild stopped by an unexpected error')
    return run.finish({ failure: { class: 'infrastructure-error', message: `unexpected: ${(err as Error).message ?? String(err)}` } })
  }

  /** Last: the lock, the log and the workspace go, whatever happened. */
  private async closeRun (run: RebuildRun): Promise<void> {
    // A failed or cancelled build leaves no empty or partial tarball behind for anyone to take.
    if (run.outTar != null && run.ociPath == null) await rm(run.outTar, { force: true })
    for (const release of run.held) release()
    await run.lock?.release()
    await run.buildLog.close()
    if (!this.keep) await rm(run.workspace, { recursive: true, force: true })
    if (run.plan.outDir == null) await pruneLogs(run.logDir, this.maxLogs).catch(() => {})
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

  /** Step 6: the variant's smoke test in the image just built, where this engine can run it. Its own failure to run is logged, never a FAILED test. */
  private async smokeTest (run: RebuildRun, variant: Variant): Promise<SmokeOutcome | undefined> {
    if (variant.smoke == null || run.engine == null || run.tarPath == null) return undefined
    const why = cannotRunSmoke(variant.smoke, run.engine)
    if (why != null) {
      run.buildLog.write(`# smoke test not run: ${why}\n`)
      run.log.info({ variant: variant.name, reason: why }, 'smoke test not run')
      return undefined
    }
    try {
      const out = await runSmokeTest(this.docker, run.engine, run.tarPath, variant.smoke, { log: run.buildLog, signal: run.signal })
      run.log.info({ variant: variant.name, result: out.result, exitCode: out.exitCode }, 'smoke test run')
      return out
    } catch (err) {
      if (run.signal.aborted) throw err
      run.log.warn({ err, variant: variant.name }, 'the smoke test could not be run')
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
