import { ajv, check } from './ajv.js'
import { ValidationError } from './errors.js'
import { LIMITS } from './limits.js'
import { WIRE } from './patterns.js'
import * as S from './schema-parts.js'
import type { ResourceDescriptor, Statement } from './statement.js'
import { targetSubjectName } from './target.js'
import {
  FAILURE_PREDICATE, REBUILD_BUILD_TYPE, SLSA_PROVENANCE_V1, STATEMENT_TYPE,
  type BaseRef, type BuildEnvironment, type Claim, type Failure, type ImageResult, type RecipeRef, type Target
} from './types.js'

/** `runDetails.builder.id` of every rebuild claim. */
export const BUILDER_ID = 'neko-rebuilder'

/** Byproduct names, in their fixed order. The manifest is the subject, not a byproduct. */
export const BYPRODUCT = { index: 'oci-index', config: 'oci-config' } as const
const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json'
} as const

const hex = (d: string): string => d.slice('sha256:'.length)
const sha = (h: string): string => `sha256:${h}`

/**
 * SLSA says `builder.version` is a map of strings, so the environment is flattened with
 * dotted keys (`engine.version`) and `emulated` written as `"true"`/`"false"`.
 */
export function flattenEnvironment (e: BuildEnvironment): Record<string, string> {
  const out: Record<string, string> = { 'engine.name': e.engine.name, 'engine.version': e.engine.version }
  if (e.engine.apiVersion !== undefined) out['engine.apiVersion'] = e.engine.apiVersion
  if (e.engine.id !== undefined) out['engine.id'] = e.engine.id
  Object.assign(out, { buildx: e.buildx, buildkit: e.buildkit })
  if (e.buildkitWorker !== undefined) out['buildkit.worker'] = e.buildkitWorker
  Object.assign(out, {
    kernel: e.kernel,
    arch: e.arch,
    emulated: e.emulated ? 'true' : 'false',
    'tool.name': e.tool.name,
    'tool.version': e.tool.version
  })
  return out
}

function unflattenEnvironment (v: Record<string, string>): BuildEnvironment {
  const engine: BuildEnvironment['engine'] = { name: 'docker', version: v['engine.version'] as string }
  if (v['engine.apiVersion'] !== undefined) engine.apiVersion = v['engine.apiVersion']
  if (v['engine.id'] !== undefined) engine.id = v['engine.id']
  const out: BuildEnvironment = {
    engine,
    buildx: v.buildx as string,
    buildkit: v.buildkit as string,
    kernel: v.kernel as string,
    arch: v.arch as string,
    emulated: v.emulated === 'true',
    tool: { name: v['tool.name'] as string, version: v['tool.version'] as string }
  }
  if (v['buildkit.worker'] !== undefined) out.buildkitWorker = v['buildkit.worker']
  return out
}

function sourceUri (t: Target): string {
  return t.tag !== undefined ? `git+${t.repository}@refs/tags/${t.tag}` : `git+${t.repository}@${t.commit}`
}

/**
 * A `from` base as a resolved dependency after the source: `name` is its variant, `uri` the
 * subject name its own claim has (same repository and platform), `digest` its manifest.
 */
function baseDependency (t: Target, b: BaseRef): { name: string, uri: string, digest: { sha256: string } } {
  return { name: b.variant, uri: targetSubjectName({ ...t, variant: b.variant }), digest: { sha256: hex(b.manifestDigest) } }
}

/**
 * The index and the config. The layers are the config's `rootfs.diff_ids`, so they ride on
 * the config descriptor as two parallel arrays rather than as one descriptor each: every
 * node parses every claim, and a descriptor per layer would double what it parses.
 */
function byproducts (r: ImageResult): ResourceDescriptor[] {
  const annotations: Record<string, unknown> = { diffIds: r.diffIds }
  if (r.layerSteps !== undefined) annotations.createdBy = r.layerSteps
  return [
    { name: BYPRODUCT.index, digest: { sha256: hex(r.indexDigest) }, mediaType: MEDIA.index },
    { name: BYPRODUCT.config, digest: { sha256: hex(r.configDigest) }, mediaType: MEDIA.config, annotations }
  ]
}

/** A success claim as an in-toto Statement with a SLSA provenance v1 predicate. */
function successStatement (c: Claim, r: ImageResult): Statement {
  const t = c.target
  const externalParameters: Record<string, unknown> = { repository: t.repository }
  if (t.tag !== undefined) externalParameters.ref = t.tag
  Object.assign(externalParameters, {
    commit: t.commit,
    variant: t.variant,
    platform: t.platform,
    recipe: { name: c.recipe.name, digest: c.recipe.digest }
  })
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: targetSubjectName(t), digest: { sha256: hex(r.manifestDigest) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: REBUILD_BUILD_TYPE,
        externalParameters,
        internalParameters: { sourceDateEpoch: c.sourceDateEpoch },
        resolvedDependencies: [{ uri: sourceUri(t), digest: { gitCommit: t.commit } }, ...(c.bases ?? []).map(b => baseDependency(t, b))]
      },
      runDetails: {
        builder: { id: BUILDER_ID, version: flattenEnvironment(c.environment) },
        metadata: { startedOn: c.startedOn, finishedOn: c.finishedOn },
        byproducts: byproducts(r)
      }
    }
  }
}

function targetObject (t: Target): Record<string, string> {
  const o: Record<string, string> = { repository: t.repository, commit: t.commit, variant: t.variant, platform: t.platform }
  if (t.tag !== undefined) o.tag = t.tag
  return o
}

// Fixed key order, whatever order the caller's object has: the same claim signs to the same bytes.
function environmentObject (e: BuildEnvironment): Record<string, unknown> {
  const engine: Record<string, string> = { name: e.engine.name, version: e.engine.version }
  if (e.engine.apiVersion !== undefined) engine.apiVersion = e.engine.apiVersion
  if (e.engine.id !== undefined) engine.id = e.engine.id
  return {
    engine,
    buildx: e.buildx,
    buildkit: e.buildkit,
    ...(e.buildkitWorker !== undefined ? { buildkitWorker: e.buildkitWorker } : {}),
    kernel: e.kernel,
    arch: e.arch,
    emulated: e.emulated,
    tool: { name: e.tool.name, version: e.tool.version }
  }
}

function failureObject (f: Failure): Record<string, string> {
  const o: Record<string, string> = { class: f.class, message: f.message }
  if (f.step !== undefined) o.step = f.step
  if (f.logExcerpt !== undefined) o.logExcerpt = f.logExcerpt
  return o
}

/** A failure claim as an in-toto Statement with the project's failure predicate. */
function failureStatement (c: Claim, f: Failure): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: targetSubjectName(c.target), digest: { gitCommit: c.target.commit } }],
    predicateType: FAILURE_PREDICATE,
    predicate: {
      target: targetObject(c.target),
      environment: environmentObject(c.environment),
      sourceDateEpoch: c.sourceDateEpoch,
      recipe: { name: c.recipe.name, digest: c.recipe.digest },
      startedOn: c.startedOn,
      finishedOn: c.finishedOn,
      failure: failureObject(f)
    }
  }
}

export function claimToStatement (c: Claim): Statement {
  if ((c.result === undefined) === (c.failure === undefined)) {
    throw new ValidationError('claim', 'exactly one of result and failure must be set')
  }
  return c.result !== undefined ? successStatement(c, c.result) : failureStatement(c, c.failure as Failure)
}

const subjectSchema = (digestSchema: Record<string, unknown>): Record<string, unknown> =>
  S.single(S.str(LIMITS.repositoryLength + LIMITS.variantLength + LIMITS.platformLength + 2), digestSchema)

const descriptor = (name: string, mediaType: string, annotations?: Record<string, unknown>): Record<string, unknown> => ({
  type: 'object',
  properties: {
    name: { type: 'string', const: name },
    digest: S.sha256Digest,
    mediaType: { type: 'string', const: mediaType },
    ...(annotations !== undefined ? { annotations } : {})
  },
  required: ['name', 'digest', 'mediaType', ...(annotations !== undefined ? ['annotations'] : [])],
  additionalProperties: false
})

const layerList = (item: Record<string, unknown>): Record<string, unknown> => ({ type: 'array', maxItems: LIMITS.layersPerImage, items: item })
const layerAnnotations = {
  type: 'object',
  properties: { diffIds: layerList(S.digest), createdBy: layerList({ type: 'string', maxLength: LIMITS.stepLength }) },
  required: ['diffIds'],
  additionalProperties: false
}

interface SuccessShape {
  subject: Array<{ name: string, digest: { sha256: string } }>
  predicate: {
    buildDefinition: {
      buildType: string
      externalParameters: { repository: string, ref?: string, commit: string, variant: string, platform: string, recipe: RecipeRef }
      internalParameters: { sourceDateEpoch: number }
      resolvedDependencies: [{ uri: string, digest: { gitCommit: string } }, ...Array<{ name: string, uri: string, digest: { sha256: string } }>]
    }
    runDetails: {
      builder: { id: string, version: Record<string, string> }
      metadata: { startedOn: string, finishedOn: string }
      byproducts: [{ digest: { sha256: string } }, { digest: { sha256: string }, annotations: { diffIds: string[], createdBy?: string[] } }]
    }
  }
}

const versionString = S.shortString
const validateSuccess = ajv.compile<SuccessShape>(S.statementWith(subjectSchema(S.sha256Digest), {
  type: 'object',
  properties: {
    buildDefinition: {
      type: 'object',
      properties: {
        buildType: { type: 'string', const: REBUILD_BUILD_TYPE },
        externalParameters: {
          type: 'object',
          properties: { repository: S.repository, ref: S.tag, commit: S.commit, variant: S.variant, platform: S.platform, recipe: S.recipe },
          required: ['repository', 'commit', 'variant', 'platform', 'recipe'],
          additionalProperties: false
        },
        internalParameters: {
          type: 'object',
          properties: { sourceDateEpoch: S.sourceDateEpoch },
          required: ['sourceDateEpoch'],
          additionalProperties: false
        },
        // The source, then the `from` bases (none in claims of images without one).
        resolvedDependencies: {
          type: 'array',
          minItems: 1,
          maxItems: 1 + LIMITS.basesPerClaim,
          items: [(S.single(S.str(LIMITS.repositoryLength + LIMITS.tagLength + 20), S.gitCommitDigest, 'uri') as { items: Record<string, unknown> }).items],
          additionalItems: {
            type: 'object',
            properties: { name: S.variant, uri: S.str(LIMITS.repositoryLength + LIMITS.variantLength + LIMITS.platformLength + 2), digest: S.sha256Digest },
            required: ['name', 'uri', 'digest'],
            additionalProperties: false
          }
        }
      },
      required: ['buildType', 'externalParameters', 'internalParameters', 'resolvedDependencies'],
      additionalProperties: false
    },
    runDetails: {
      type: 'object',
      properties: {
        builder: {
          type: 'object',
          properties: {
            id: { type: 'string', const: BUILDER_ID },
            version: {
              type: 'object',
              properties: {
                'engine.name': { type: 'string', const: 'docker' },
                'engine.version': versionString,
                'engine.apiVersion': versionString,
                'engine.id': versionString,
                buildx: versionString,
                buildkit: versionString,
                'buildkit.worker': versionString,
                kernel: versionString,
                arch: S.str(32, { pattern: '^[a-z0-9_]+$' }),
                emulated: { type: 'string', enum: ['true', 'false'] },
                'tool.name': versionString,
                'tool.version': versionString
              },
              required: ['engine.name', 'engine.version', 'buildx', 'buildkit', 'kernel', 'arch', 'emulated', 'tool.name', 'tool.version'],
              additionalProperties: false
            }
          },
          required: ['id', 'version'],
          additionalProperties: false
        },
        metadata: {
          type: 'object',
          properties: { startedOn: S.time, finishedOn: S.time },
          required: ['startedOn', 'finishedOn'],
          additionalProperties: false
        },
        byproducts: {
          type: 'array',
          minItems: 2,
          maxItems: 2,
          items: [descriptor(BYPRODUCT.index, MEDIA.index), descriptor(BYPRODUCT.config, MEDIA.config, layerAnnotations)]
        }
      },
      required: ['builder', 'metadata', 'byproducts'],
      additionalProperties: false
    }
  },
  required: ['buildDefinition', 'runDetails'],
  additionalProperties: false
}))

interface FailureShape {
  subject: Array<{ name: string, digest: { gitCommit: string } }>
  predicate: {
    target: Target
    environment: BuildEnvironment
    sourceDateEpoch: number
    recipe: RecipeRef
    startedOn: string
    finishedOn: string
    failure: Failure
  }
}

const validateFailure = ajv.compile<FailureShape>(S.statementWith(subjectSchema(S.gitCommitDigest), {
  type: 'object',
  properties: {
    target: {
      type: 'object',
      properties: { repository: S.repository, commit: S.commit, variant: S.variant, platform: S.platform, tag: S.tag },
      required: ['repository', 'commit', 'variant', 'platform'],
      additionalProperties: false
    },
    environment: S.environment,
    sourceDateEpoch: S.sourceDateEpoch,
    recipe: S.recipe,
    startedOn: S.time,
    finishedOn: S.time,
    failure: S.failure
  },
  required: ['target', 'environment', 'sourceDateEpoch', 'recipe', 'startedOn', 'finishedOn', 'failure'],
  additionalProperties: false
}))

function checkTimes (startedOn: string, finishedOn: string, field: string): void {
  if (Date.parse(finishedOn) < Date.parse(startedOn)) throw new ValidationError(field, 'is before startedOn')
}

function successToClaim (statement: unknown): Claim {
  const s = check(validateSuccess, statement)
  const bd = s.predicate.buildDefinition
  const rd = s.predicate.runDetails
  const ep = bd.externalParameters
  const target: Target = { repository: ep.repository, commit: ep.commit, variant: ep.variant, platform: ep.platform }
  if (ep.ref !== undefined) target.tag = ep.ref
  const subject = s.subject[0] as SuccessShape['subject'][number]
  if (subject.name !== targetSubjectName(target)) {
    throw new ValidationError('subject[0].name', `must be ${JSON.stringify(targetSubjectName(target))} (repository#variant@platform)`)
  }
  const [dep, ...baseDeps] = bd.resolvedDependencies
  if (dep.uri !== sourceUri(target)) throw new ValidationError('predicate.buildDefinition.resolvedDependencies[0].uri', `must be ${JSON.stringify(sourceUri(target))}`)
  if (dep.digest.gitCommit !== target.commit) throw new ValidationError('predicate.buildDefinition.resolvedDependencies[0].digest.gitCommit', 'must equal externalParameters.commit')
  checkTimes(rd.metadata.startedOn, rd.metadata.finishedOn, 'predicate.runDetails.metadata.finishedOn')
  const [index, config] = rd.byproducts
  const { diffIds, createdBy } = config.annotations
  if (createdBy !== undefined && createdBy.length !== diffIds.length) {
    throw new ValidationError('predicate.runDetails.byproducts[1].annotations.createdBy', `has ${createdBy.length} entries for ${diffIds.length} layers`)
  }
  const result: ImageResult = {
    indexDigest: sha(index.digest.sha256),
    manifestDigest: sha(subject.digest.sha256),
    configDigest: sha(config.digest.sha256),
    diffIds
  }
  if (createdBy !== undefined) result.layerSteps = createdBy
  const bases = baseDeps.map((d, i): BaseRef => {
    const field = `predicate.buildDefinition.resolvedDependencies[${i + 1}]`
    const uri = targetSubjectName({ ...target, variant: d.name })
    if (d.uri !== uri) throw new ValidationError(`${field}.uri`, `must be ${JSON.stringify(uri)} (the base's own subject name)`)
    if (d.name === target.variant) throw new ValidationError(`${field}.name`, 'an image cannot be its own base')
    return { variant: d.name, manifestDigest: sha(d.digest.sha256) }
  })
  if (new Set(bases.map(b => b.variant)).size !== bases.length) throw new ValidationError('predicate.buildDefinition.resolvedDependencies', 'names a base twice')
  return {
    target,
    sourceDateEpoch: bd.internalParameters.sourceDateEpoch,
    recipe: { name: ep.recipe.name, digest: ep.recipe.digest },
    environment: unflattenEnvironment(rd.builder.version),
    startedOn: rd.metadata.startedOn,
    finishedOn: rd.metadata.finishedOn,
    result,
    ...(bases.length > 0 ? { bases } : {})
  }
}

function failureToClaim (statement: unknown): Claim {
  const s = check(validateFailure, statement)
  const p = s.predicate
  const subject = s.subject[0] as FailureShape['subject'][number]
  if (subject.name !== targetSubjectName(p.target)) {
    throw new ValidationError('subject[0].name', `must be ${JSON.stringify(targetSubjectName(p.target))} (repository#variant@platform)`)
  }
  if (subject.digest.gitCommit !== p.target.commit) throw new ValidationError('subject[0].digest.gitCommit', 'must equal predicate.target.commit')
  checkTimes(p.startedOn, p.finishedOn, 'predicate.finishedOn')
  const target: Target = { repository: p.target.repository, commit: p.target.commit, variant: p.target.variant, platform: p.target.platform }
  if (p.target.tag !== undefined) target.tag = p.target.tag
  const engine: BuildEnvironment['engine'] = { name: 'docker', version: p.environment.engine.version }
  if (p.environment.engine.apiVersion !== undefined) engine.apiVersion = p.environment.engine.apiVersion
  if (p.environment.engine.id !== undefined) engine.id = p.environment.engine.id
  const failure: Failure = { class: p.failure.class, message: p.failure.message }
  if (p.failure.step !== undefined) failure.step = p.failure.step
  if (p.failure.logExcerpt !== undefined) failure.logExcerpt = p.failure.logExcerpt
  return {
    target,
    sourceDateEpoch: p.sourceDateEpoch,
    recipe: { name: p.recipe.name, digest: p.recipe.digest },
    environment: { ...p.environment, engine, tool: { name: p.environment.tool.name, version: p.environment.tool.version } },
    startedOn: p.startedOn,
    finishedOn: p.finishedOn,
    failure
  }
}

/** Validate a claim Statement (`_type` checked; predicateType SLSA provenance or failure) and return the Claim. */
export function statementToClaim (statement: { predicateType: string }): Claim {
  return statement.predicateType === FAILURE_PREDICATE ? failureToClaim(statement) : successToClaim(statement)
}

/** Validate a Claim before signing, with the same rules a receiver applies. */
export function checkClaim (c: Claim): void {
  if (c.bases !== undefined && c.failure !== undefined) throw new ValidationError('bases', 'only a success claim names its bases')
  for (const [i, b] of (c.bases ?? []).entries()) {
    if (!WIRE.digest.test(b.manifestDigest)) throw new ValidationError(`bases[${i}].manifestDigest`, `${JSON.stringify(b.manifestDigest)} is not sha256:<64 hex>`)
  }
  if (c.result !== undefined && c.result.layerSteps !== undefined && c.result.layerSteps.length !== c.result.diffIds.length) {
    throw new ValidationError('result.layerSteps', `has ${c.result.layerSteps.length} entries for ${c.result.diffIds.length} layers`)
  }
  for (const [field, d] of c.result !== undefined
    ? [['result.indexDigest', c.result.indexDigest], ['result.manifestDigest', c.result.manifestDigest], ['result.configDigest', c.result.configDigest], ...c.result.diffIds.map((x, i) => [`result.diffIds[${i}]`, x])]
    : []) {
    if (!WIRE.digest.test(d as string)) throw new ValidationError(field as string, `${JSON.stringify(d)} is not sha256:<64 hex>`)
  }
  statementToClaim(JSON.parse(JSON.stringify(claimToStatement(c))) as Statement)
}
