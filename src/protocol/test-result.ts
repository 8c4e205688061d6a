import { ajv, check } from './ajv.js'
import { flattenEnvironment } from './claim.js'
import { verifyEnvelope, type Envelope, type VerifyOptions } from './dsse.js'
import { ValidationError } from './errors.js'
import { parseStrictJson } from './json.js'
import type { SigningIdentity } from './keys.js'
import { LIMITS } from './limits.js'
import { signStatement } from './messages.js'
import * as S from './schema-parts.js'
import type { Statement } from './statement.js'
import { targetSubjectName } from './target.js'
import { PAYLOAD_TYPE, STATEMENT_TYPE, type BuildEnvironment, type Digest, type RecipeRef, type Target } from './types.js'

/** in-toto's Test Result predicate (github.com/in-toto/attestation, spec/predicates/test-result.md). */
export const TEST_RESULT_PREDICATE = 'https://in-toto.io/attestation/test-result/v0.1'
/** The one test a Test Result of this project reports: the recipe's smoke test of the variant. */
export const SMOKE_TEST_NAME = 'smoke'

/** Bounds of a Test Result: it arrives from the network on its own topic. */
export const TEST_RESULT_LIMITS = { envelopeBytes: 16 * 1024, commandArgs: 64, argLength: 1024 } as const

/**
 * A builder's signed report that the recipe's smoke test ran in its rebuilt image of a target
 * (the image by manifest digest) and passed or failed. Never a vote on reproducibility.
 */
export interface TestResult {
  target: Target
  /** The image the test ran in: the subject. */
  manifestDigest: Digest
  recipe: RecipeRef
  result: 'PASSED' | 'FAILED'
  /** The command run in the image. */
  command: string[]
  /** Run with the host's NVIDIA GPU handed to the container. */
  gpu: boolean
  /** The command's exit status; absent when it did not exit (timeout, killed). */
  exitCode?: number
  /** Where it ran: the engine (with `emulated` for the image's platform). */
  environment: BuildEnvironment
  startedOn: string
  finishedOn: string
}

const hex = (d: string): string => d.slice('sha256:'.length)

function sourceUri (t: Target): string {
  return t.tag !== undefined ? `git+${t.repository}@refs/tags/${t.tag}` : `git+${t.repository}@${t.commit}`
}

/**
 * As an in-toto Statement: subject the image; `configuration` the source commit, then the
 * test as the recipe (by digest) ran it, with the variant, command, GPU, exit status, times
 * and the engine in its annotations; the test named `smoke` in `passedTests` or `failedTests`.
 */
export function testResultToStatement (t: TestResult): Statement {
  const test: Record<string, unknown> = {
    recipe: t.recipe.name,
    variant: t.target.variant,
    platform: t.target.platform,
    ...(t.target.tag !== undefined ? { tag: t.target.tag } : {}),
    command: t.command,
    gpu: t.gpu,
    ...(t.exitCode !== undefined ? { exitCode: t.exitCode } : {}),
    startedOn: t.startedOn,
    finishedOn: t.finishedOn,
    environment: flattenEnvironment(t.environment)
  }
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: targetSubjectName(t.target), digest: { sha256: hex(t.manifestDigest) } }],
    predicateType: TEST_RESULT_PREDICATE,
    predicate: {
      result: t.result,
      configuration: [
        { uri: sourceUri(t.target), digest: { gitCommit: t.target.commit } },
        { name: SMOKE_TEST_NAME, digest: { sha256: hex(t.recipe.digest) }, annotations: test }
      ],
      passedTests: t.result === 'PASSED' ? [SMOKE_TEST_NAME] : [],
      warnedTests: [],
      failedTests: t.result === 'FAILED' ? [SMOKE_TEST_NAME] : []
    }
  }
}

interface Shape {
  subject: [{ name: string, digest: { sha256: string } }]
  predicate: {
    result: 'PASSED' | 'FAILED'
    configuration: [{ uri: string, digest: { gitCommit: string } }, { name: string, digest: { sha256: string }, annotations: {
      recipe: string, variant: string, platform: string, tag?: string, command: string[], gpu: boolean, exitCode?: number, startedOn: string, finishedOn: string, environment: Record<string, string>
    } }]
    passedTests: string[]
    warnedTests: string[]
    failedTests: string[]
  }
}

const testNames = { type: 'array', maxItems: 1, items: { type: 'string', const: SMOKE_TEST_NAME } }
const validate = ajv.compile<Shape>(S.statementWith(S.single(S.str(LIMITS.repositoryLength + LIMITS.variantLength + LIMITS.platformLength + 2), S.sha256Digest), {
  type: 'object',
  properties: {
    result: { enum: ['PASSED', 'FAILED'] },
    configuration: {
      type: 'array',
      minItems: 2,
      maxItems: 2,
      items: [
        (S.single(S.str(LIMITS.repositoryLength + LIMITS.tagLength + 20), S.gitCommitDigest, 'uri') as { items: Record<string, unknown> }).items,
        {
          type: 'object',
          properties: {
            name: { type: 'string', const: SMOKE_TEST_NAME },
            digest: S.sha256Digest,
            annotations: {
              type: 'object',
              properties: {
                recipe: (S.recipe as { properties: { name: Record<string, unknown> } }).properties.name,
                variant: S.variant,
                platform: S.platform,
                tag: S.tag,
                command: { type: 'array', minItems: 1, maxItems: TEST_RESULT_LIMITS.commandArgs, items: { type: 'string', maxLength: TEST_RESULT_LIMITS.argLength } },
                gpu: { type: 'boolean' },
                exitCode: { type: 'integer', minimum: -1, maximum: 255 },
                startedOn: S.time,
                finishedOn: S.time,
                environment: { type: 'object', maxProperties: 16, additionalProperties: S.shortString }
              },
              required: ['recipe', 'variant', 'platform', 'command', 'gpu', 'startedOn', 'finishedOn', 'environment'],
              additionalProperties: false
            }
          },
          required: ['name', 'digest', 'annotations'],
          additionalProperties: false
        }
      ]
    },
    passedTests: testNames,
    warnedTests: { type: 'array', maxItems: 0 },
    failedTests: testNames
  },
  required: ['result', 'configuration', 'passedTests', 'warnedTests', 'failedTests'],
  additionalProperties: false
}))

/** Reads a Test Result Statement back, with every field checked; throws ValidationError naming the field. */
export function statementToTestResult (statement: unknown): TestResult {
  const s = check(validate, statement)
  const [source, test] = s.predicate.configuration
  const a = test.annotations
  const target: Target = { repository: '', commit: source.digest.gitCommit, variant: a.variant, platform: a.platform }
  // The repository is the subject name's, less `#variant@platform`.
  const suffix = `#${a.variant}@${a.platform}`
  const name = s.subject[0].name
  if (!name.endsWith(suffix) || name.length === suffix.length) throw new ValidationError('subject[0].name', `must be <repository>${suffix}`)
  target.repository = name.slice(0, -suffix.length)
  if (a.tag !== undefined) target.tag = a.tag
  if (source.uri !== sourceUri(target)) throw new ValidationError('predicate.configuration[0].uri', `must be ${JSON.stringify(sourceUri(target))}`)
  const passed = s.predicate.passedTests.length === 1
  if (passed === (s.predicate.failedTests.length === 1) || passed !== (s.predicate.result === 'PASSED')) {
    throw new ValidationError('predicate.result', 'must agree with passedTests and failedTests (the one smoke test in one of them)')
  }
  if (Date.parse(a.finishedOn) < Date.parse(a.startedOn)) throw new ValidationError('predicate.configuration[1].annotations.finishedOn', 'is before startedOn')
  const e = a.environment
  const need = ['engine.version', 'buildx', 'buildkit', 'kernel', 'arch', 'emulated', 'tool.name', 'tool.version']
  const missing = need.find(k => e[k] === undefined)
  if (missing !== undefined) throw new ValidationError(`predicate.configuration[1].annotations.environment.${missing}`, 'is required')
  const environment: BuildEnvironment = {
    engine: { name: 'docker', version: e['engine.version'] as string, ...(e['engine.apiVersion'] !== undefined ? { apiVersion: e['engine.apiVersion'] } : {}), ...(e['engine.id'] !== undefined ? { id: e['engine.id'] } : {}) },
    buildx: e.buildx as string,
    buildkit: e.buildkit as string,
    ...(e['buildkit.worker'] !== undefined ? { buildkitWorker: e['buildkit.worker'] } : {}),
    kernel: e.kernel as string,
    arch: e.arch as string,
    emulated: e.emulated === 'true',
    tool: { name: e['tool.name'] as string, version: e['tool.version'] as string }
  }
  return {
    target,
    manifestDigest: `sha256:${s.subject[0].digest.sha256}`,
    recipe: { name: a.recipe, digest: `sha256:${test.digest.sha256}` },
    result: s.predicate.result,
    command: a.command,
    gpu: a.gpu,
    ...(a.exitCode !== undefined ? { exitCode: a.exitCode } : {}),
    environment,
    startedOn: a.startedOn,
    finishedOn: a.finishedOn
  }
}

/** Signs a Test Result (checked as a receiver checks it first). */
export function signTestResult (t: TestResult, identity: SigningIdentity): Envelope {
  const statement = testResultToStatement(t)
  statementToTestResult(JSON.parse(JSON.stringify(statement)))
  return signStatement(statement, identity)
}

/**
 * Verifies a Test Result envelope (JSON text or parsed): its size, the signature (with
 * `opts.keys`, or the embedded key when allowed), then the Statement. Throws
 * SignatureError, ValidationError or LimitError naming what was wrong.
 */
export function verifyTestResult (envelope: unknown, opts: VerifyOptions): { testResult: TestResult, keyId: string } {
  const v = verifyEnvelope(envelope, opts)
  if (v.payloadType !== PAYLOAD_TYPE) throw new ValidationError('envelope.payloadType', `must be ${PAYLOAD_TYPE}`)
  const statement = parseStrictJson(Buffer.from(v.payload).toString('utf8'), 'envelope.payload') as { _type?: unknown, predicateType?: unknown }
  if (statement?._type !== STATEMENT_TYPE) throw new ValidationError('_type', `must be ${STATEMENT_TYPE}`)
  if (statement.predicateType !== TEST_RESULT_PREDICATE) throw new ValidationError('predicateType', `must be ${TEST_RESULT_PREDICATE}`)
  return { testResult: statementToTestResult(statement), keyId: v.keyId }
}
