import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { ValidationError } from '../../protocol/errors.js'
import { parsePolicy } from '../../protocol/policy.js'
import { collectAttestations, judgeImage, type ImageJudgement, type ImageOutcome } from '../../node/attest/index.js'
import { loadDockerCredentials } from '../../node/registry/credentials.js'
import { createRegistryClient, createRegistryWriter, ManifestNotFoundError, parseReference } from '../../node/registry/index.js'
import { INDEX_TYPES } from '../../node/registry/media-types.js'
import { exitCodeFor } from '../verdicts/exit.js'
import { cliLogger } from '../logger.js'

interface VerifyImageFlags {
  policy: string
  platform?: string
  json?: boolean
  registryAuth?: string
  insecureRegistry?: boolean
}

const MAX_POLICY_BYTES = 4 * 1024 * 1024

const short = (d: string | undefined): string => d === undefined ? '-' : d.slice(0, 'sha256:'.length + 12)

/** Worst first: an index is as good as its worst image. */
const OUTCOMES: ImageOutcome[] = ['not-reproducible', 'forged', 'unsettled', 'pending', 'ok']
const HEADS: Record<ImageOutcome, string> = { ok: 'PASS', 'not-reproducible': 'FAIL', forged: 'FORGED', unsettled: 'UNSETTLED', pending: 'PENDING' }

function describe (ref: string, j: ImageJudgement & { mode: string }): string {
  const head = `${ref}@${j.digest}${j.platform !== undefined ? ` (${j.platform})` : ''}: ${HEADS[j.outcome]}`
  const lines = [head]
  if (j.outcome === 'forged') lines.push('  every attestation found was refused or is about another image; no trusted builder said anything about this one')
  if (j.verdicts.length === 0) lines.push('  no claims about this image (under the policy, nothing to count)')
  for (const v of j.verdicts) {
    if (v.reason !== undefined) lines.push(`  ${v.key}: ${v.status}: ${v.reason}`)
    lines.push(`  ${v.key}: ${v.status}, ${v.agreeing.length} agreeing of ${v.threshold} needed (operators: ${v.operators.join(', ') || 'none'}), consensus ${short(v.consensusDigest)}${v.published.match === 'no' ? `, NOT this image (${short(v.published.digest)})` : v.published.match === 'yes' ? ', this image' : ''}`)
    for (const d of v.dissenting) lines.push(`    dissent: ${d.name} (${d.operator}) got ${d.digest}`)
    for (const f of v.failed) lines.push(`    failed: ${f.name ?? f.keyId} ${f.failure.class}`)
    for (const e of v.equivocating) lines.push(`    equivocating (not counted): ${e.name ?? e.keyId}`)
    for (const u of v.untrusted) lines.push(`    untrusted (not counted): ${u.keyId.slice(0, 16)} ${u.digest ?? u.failureClass ?? ''}`)
  }
  for (const v of j.elsewhere) lines.push(`  for another image (not counted): ${v.key}`)
  for (const s of j.vsas) {
    // A summary about another image says nothing about this one, whatever its result.
    const about = s.aboutThisImage ? '' : ` about another image (${s.subjects.map(x => `${x.name ?? '?'}@sha256:${(x.sha256 ?? '').slice(0, 12)}`).join(', ')})`
    lines.push(`  VSA${about} (not counted): ${s.result} by ${s.verifier} (key ${s.keyId.slice(0, 16)}), ${s.agreeingOperators.length} agreeing operators, envelope ${s.envelope} in ${s.source}`)
  }
  for (const r of j.rejected) lines.push(`  rejected (not counted): ${r.envelope !== undefined ? `envelope ${r.envelope} in ` : ''}${r.source}: ${r.reason}`)
  lines.push(`  attestations listed through ${j.mode === 'api' ? 'the referrers API' : 'the referrers tag'}`)
  return lines.join('\n') + '\n'
}

export function register (program: Command): void {
  program.command('verify-image')
    .description('Read the attestations attached to an image on its registry, verify every claim against a trust policy and recompute the quorum offline')
    .argument('<ref>', 'image reference: REGISTRY/REPOSITORY:TAG or @sha256:… (an index is checked per platform)')
    .requiredOption('--policy <file>', 'trust policy JSON: the builders whose claims count')
    .option('--platform <os/arch>', 'check only this platform of an index')
    .option('--json', 'print the judgement as JSON')
    .option('--registry-auth <file>', 'Docker config.json with credentials for the registry (default: $NEKO_REGISTRY_AUTH)')
    .option('--insecure-registry', 'talk plain HTTP to the registry (loopback registries always are)')
    .action(async (refString: string, flags: VerifyImageFlags) => {
      let policyText: string
      try {
        policyText = await readFile(flags.policy, 'utf8')
      } catch (err) {
        throw new ValidationError('--policy', `cannot read ${flags.policy} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
      }
      if (policyText.length > MAX_POLICY_BYTES) throw new ValidationError('--policy', `${flags.policy} is larger than ${MAX_POLICY_BYTES} bytes`)
      let policyJson: unknown
      try {
        policyJson = JSON.parse(policyText)
      } catch (err) {
        throw new ValidationError('--policy', `${flags.policy} is not JSON (${(err as Error).message})`)
      }
      const policy = parsePolicy(policyJson)
      const ref = parseReference(refString, 'ref')
      const authFile = flags.registryAuth ?? process.env.NEKO_REGISTRY_AUTH
      const credentials = authFile !== undefined ? await loadDockerCredentials(authFile) : undefined
      const common = { timeoutMs: 30_000, ...(flags.insecureRegistry === true ? { insecure: true } : {}), ...(credentials !== undefined ? { credentials } : {}) }
      const logger = cliLogger()
      const registry = createRegistryClient({ logger }, common)
      const writer = createRegistryWriter({ logger }, common)
      const log = logger.forComponent('verify-image')

      const top = await writer.getManifest(ref, ref.digest ?? ref.tag ?? 'latest')
      if (top === undefined) throw new ManifestNotFoundError(ref.canonical, `manifest ${ref.digest ?? ref.tag ?? 'latest'} unknown to ${ref.registry}`)
      const name = `${ref.registry}/${ref.repository}`
      let platforms: Array<string | undefined> = [flags.platform]
      if (INDEX_TYPES.includes(top.mediaType) && flags.platform === undefined) {
        const manifests = Array.isArray(top.json.manifests) ? top.json.manifests as Array<{ platform?: { os?: unknown, architecture?: unknown, variant?: unknown } }> : []
        platforms = manifests.map(m => m.platform).filter(p => typeof p?.os === 'string' && typeof p.architecture === 'string' && p.os !== 'unknown')
          .map(p => `${String(p!.os)}/${String(p!.architecture)}${typeof p!.variant === 'string' ? `/${p!.variant}` : ''}`)
      }
      const judged: Array<ImageJudgement & { mode: string }> = []
      for (const platform of [...new Set(platforms)]) {
        // Pinned to the digest read above: every image judged belongs to the same index.
        const image = await registry.resolve(`${name}@${top.digest}`, platform)
        const found = await collectAttestations({ writer, log }, ref, image.manifestDigest)
        const j = judgeImage(policy, { digest: image.manifestDigest, ...(image.platform !== undefined ? { platform: image.platform } : {}) }, found.envelopes, found.skipped)
        judged.push({ ...j, mode: found.mode })
      }
      const outcome = OUTCOMES.find(o => judged.some(j => j.outcome === o)) ?? 'pending'
      if (flags.json === true) {
        process.stdout.write(JSON.stringify({ reference: ref.canonical, digest: top.digest, outcome, images: judged }, null, 2) + '\n')
      } else {
        for (const j of judged) process.stdout.write(describe(name, j))
      }
      process.exitCode = exitCodeFor(outcome)
    })
}
