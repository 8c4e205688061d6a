import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import { decodeBundle } from '../../protocol/bundle.js'
import { ValidationError } from '../../protocol/errors.js'
import type { CountedClaim, VerifiedClaim } from '../../protocol/quorum.js'
import { WIRE } from '../../protocol/patterns.js'
import { parsePolicy, policyKeys } from '../../protocol/policy.js'
import { decodeVsa, type VsaSummary } from '../../protocol/vsa.js'
import { targetKey } from '../../protocol/target.js'
import type { Announcement, Target } from '../../protocol/types.js'
import { checkWitnessed, takeInclusionLines } from '../../protocol/tlog/witnessed.js'
import { NoTrustedAnnouncementError } from '../../node/consensus/errors.js'
import { announcerTrusted, judge } from '../../node/consensus/evaluate.js'
import { gateOutcome } from '../../node/consensus/outcome.js'
import { EXIT } from '../exit-codes.js'
import { exitCodeFor } from '../verdicts/exit.js'
import { formatReleases } from '../verdicts/table.js'

interface VerifyOptions {
  policy: string
  published?: string
  json?: boolean
  claimsOnly?: boolean
}

const MAX_INPUT_BYTES = 512 * 1024 * 1024

function readText (file: string, what: string): string {
  let text: string
  try {
    // Decoded straight into one string: read with an encoding, fs/promises joins 512 KiB
    // pieces, which the first split of a large bundle then has to copy into one again.
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ValidationError(file, `cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  if (text.length > MAX_INPUT_BYTES) throw new ValidationError(file, `${what} is larger than ${MAX_INPUT_BYTES} bytes`)
  return text
}

function readJson (file: string, what: string): unknown {
  const text = readText(file, what)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ValidationError(file, `${what} is not JSON (${(err as Error).message})`)
  }
}

/**
 * Published digests: either an object `{ "<targetKey>": "sha256:…" }` or an array of
 * `{ repository, commit, variant, platform, digest }`.
 */
export function parsePublished (json: unknown, file: string): Map<string, string> {
  const out = new Map<string, string>()
  const digestOf = (field: string, d: unknown): string => {
    if (typeof d !== 'string' || !WIRE.digest.test(d)) throw new ValidationError(`${file}: ${field}`, 'expected sha256:<64 hex>')
    return d
  }
  if (Array.isArray(json)) {
    json.forEach((e: unknown, i) => {
      const o = e as Record<string, unknown> | null
      if (o === null || typeof o !== 'object') throw new ValidationError(`${file}: [${i}]`, 'expected an object')
      for (const f of ['repository', 'commit', 'variant', 'platform']) {
        if (typeof o[f] !== 'string') throw new ValidationError(`${file}: [${i}].${f}`, 'expected a string')
      }
      out.set(targetKey(o as unknown as Target), digestOf(`[${i}].digest`, o.digest))
    })
  } else if (json !== null && typeof json === 'object') {
    for (const [k, d] of Object.entries(json)) out.set(k, digestOf(k, d))
  } else {
    throw new ValidationError(file, 'expected an object of targetKey → digest or an array of {repository, commit, variant, platform, digest}')
  }
  return out
}

export function register (program: Command): void {
  program.command('verify')
    .description('Verify a JSON Lines bundle of signed claims and announcements offline and print the verdict per target')
    .argument('<bundle>', 'JSON Lines file, one DSSE envelope per line')
    .requiredOption('--policy <file>', 'trust policy JSON (builders, announcers, threshold, minOperators, allowedDissent)')
    .option('--published <file>', 'published manifest digests per target, to compare with the consensus')
    .option('--json', 'print one JSON object per target per line instead of a table')
    .option('--claims-only', 'judge the targets the claims name without a trusted announcement (for a bundle of rebuild claims); the verdicts then say nothing about which commit a tag is')
    .action(async (bundleFile: string, opts: VerifyOptions) => {
      const policy = parsePolicy(readJson(opts.policy, 'trust policy'))
      const published = opts.published !== undefined ? parsePublished(readJson(opts.published, 'published digests'), opts.published) : undefined
      // Inclusion lines ({"tlogInclusion": …}) ride along in the bundle; envelopes are the rest.
      const carried = takeInclusionLines(readText(bundleFile, 'bundle'))
      for (const { line, reason } of carried.errors) process.stderr.write(`${bundleFile}:${line}: skipped inclusion proof: ${reason}\n`)
      const claims: VerifiedClaim[] = []
      const announcements: Announcement[] = []
      let untrustedAnnouncements = 0
      const errors: Array<{ line: number, error: Error }> = []
      // Decoded a batch at a time, keeping only what the verdicts read: never every envelope at once.
      decodeBundle(carried.lines, { keys: policyKeys(policy), allowEmbeddedKeys: true, ids: true }, {
        entry (line, message) {
          if (message.kind === 'claim') {
            if (policy.witnesses !== undefined) {
              const w = checkWitnessed('claim', message.id, carried.evidence.get(message.id), policy.witnesses)
              if (!w.ok) {
                process.stderr.write(`${bundleFile}:${line}: claim by ${message.keyId.slice(0, 16)} not counted: ${w.reason}\n`)
                return
              }
            }
            // Only what the verdict reads is kept: the layers and build details of a large
            // bundle would otherwise all stay in memory until the end.
            const c = message.claim
            const claim: CountedClaim = { target: c.target, finishedOn: c.finishedOn }
            if (c.result !== undefined) claim.result = { manifestDigest: c.result.manifestDigest }
            if (c.failure !== undefined) claim.failure = c.failure
            // Votes from one engine count once, here as on a node.
            const engineId = c.environment?.engine.id
            if (engineId !== undefined) claim.environment = { engine: { id: engineId } }
            // A builder's key id as the policy's own string, not the envelope's copy: the
            // verdicts look each claim's key up several times, a new string costs each a hash.
            claims.push({ claim, keyId: policy.builderById.get(message.keyId)?.keyId ?? message.keyId, id: message.id })
          } else if (announcerTrusted(policy, message.keyId)) {
            // The one trust rule (src/node/consensus/release.ts): a release is what an announcer of the policy announced.
            announcements.push(message.announcement)
          } else {
            process.stderr.write(`${bundleFile}:${line}: announcement by ${message.keyId} is not from a policy announcer: ignored\n`)
            untrustedAnnouncements++
          }
        },
        error (line, error) { errors.push({ line, error }) }
      })
      // VSAs (this tool's own among them) are read and shown, never counted: the verdict is recomputed from the claims.
      const vsas: Array<{ line: number, vsa: VsaSummary }> = []
      for (const { line, error } of errors) {
        try {
          vsas.push({ line, vsa: decodeVsa((carried.lines[line - 1] ?? '').trim(), { keys: policyKeys(policy), allowEmbeddedKeys: true }) })
          continue
        } catch {
          // Not a VSA either: report why it was not a claim.
        }
        process.stderr.write(`${bundleFile}:${line}: skipped: ${error.name}: ${error.message}\n`)
      }
      const vsaLines = vsas.map(({ line, vsa }) => `${bundleFile}:${line}: VSA (not counted): ${vsa.result} by ${vsa.verifier} (key ${vsa.keyId.slice(0, 16)}) for ${vsa.subjects.map(x => `${x.name ?? ''}${x.sha256 !== undefined ? `@sha256:${x.sha256}` : ''}`).join(', ')}\n`).join('')
      // A bundle of VSAs only (a VSA file, as `status --vsa` writes): shown, with nothing to judge.
      if (vsas.length > 0 && claims.length === 0 && announcements.length === 0) {
        process.stdout.write(vsaLines + 'no claims in the bundle: nothing judged (a VSA is shown, never counted; verify the claims it names, e.g. a node\'s claims.intoto.jsonl)\n')
        process.exitCode = EXIT.PENDING
        return
      }
      // Claims alone say what a commit builds to, not that the commit is a release: anyone
      // can sign "v1 is that old commit" and bundle it with genuine claims for it.
      if (announcements.length === 0 && opts.claimsOnly !== true) {
        const detail = policy.announcers.length === 0
          ? 'the policy names no announcers'
          : untrustedAnnouncements > 0 ? `${untrustedAnnouncements} by other keys ignored` : 'it holds none'
        throw new NoTrustedAnnouncementError('any release', bundleFile, `${detail}; --claims-only judges the claims alone`)
      }
      // Every target a claim names is judged too: a bundle is not one release.
      const { verdicts, targets } = judge({ policy, announcements, claims, published, claimedTargets: true })
      if (opts.json === true) {
        process.stdout.write(verdicts.map(v => JSON.stringify(v) + '\n').join(''))
      } else if (verdicts.length === 0) {
        process.stdout.write('no targets in the bundle\n')
      } else {
        process.stdout.write(formatReleases(verdicts.map((v, i) => ({ target: v.target, consensus: targets[i]! })), { publishedChecked: published !== undefined }))
      }
      if (vsaLines !== '') (opts.json === true ? process.stderr : process.stdout).write((opts.json === true ? '' : '\n') + vsaLines)
      process.exitCode = exitCodeFor(gateOutcome(verdicts))
    })
}
