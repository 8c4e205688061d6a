import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { signStatement } from '../../protocol/messages.js'
import { WIRE } from '../../protocol/patterns.js'
import { buildVsa, verifierIdOf } from '../../protocol/vsa.js'
import { defaultDataDir } from '../../node/config/resolve.js'
import { evaluateRelease, type ReleaseEvaluation } from '../../node/consensus/evaluate.js'
import { gateOutcome } from '../../node/consensus/outcome.js'
import { checkPublished } from '../../node/consensus/published.js'
import { readRelease } from '../../node/consensus/release.js'
import { policyReference } from '../../node/daemon/policy.js'
import { readIdentity } from '../../node/identity-files.js'
import { createRegistryClient } from '../../node/registry/index.js'
import { formatReport } from '../../node/divergence/index.js'
import { getFromNode, jsonFromNode } from '../../node/client/index.js'
import type { DivergenceReport } from '../../protocol/divergence-report.js'
import { UsageError } from '../errors.js'
import { formatTestResults, summariseTestResults, type TestResultSummary } from '../../node/test-results/view.js'
import { exitCodeFor } from '../verdicts/exit.js'
import { formatConsensus } from '../verdicts/table.js'
import { cliLogger } from '../logger.js'
import { formatReachability, type Reachability } from '../../node/p2p/nat.js'
import { collect, imagesFor, parseImages } from '../images.js'
import { gather, type StatusFlags } from '../release-source.js'
import { policyFor } from '../trust-policy.js'

/**
 * `images`: variant → the repository the registry check read. A target checked there is
 * summarised as that image (subject and `resourceUri`, as `attest` does); one not checked
 * as its agreed digest and source target.
 */
async function writeVsa (file: string, keyDir: string, evaluation: ReleaseEvaluation, policyFile: string, images: ReadonlyMap<string, string>): Promise<void> {
  const identity = await readIdentity(keyDir, { logger: cliLogger() })
  const { uri: policyUri, digest: policyDigest } = await policyReference(policyFile)
  // The signer names itself by its key: a node URL would name a party that did not sign.
  const verifier = verifierIdOf(identity.keyId)
  const timeVerified = new Date().toISOString()
  const lines = evaluation.verdicts.map(v => {
    // The claims the verdict rests on: every counted trusted claim, agreeing or not.
    const claimIds = [...v.agreeing, ...v.dissenting, ...v.failed].map(x => x.claimId)
    const name = images.get(v.target.variant)
    const image = name !== undefined && v.published.digest !== undefined ? { name, digest: v.published.digest } : undefined
    return JSON.stringify(signStatement(buildVsa(v, { verifier, policyUri, policyDigest, claimIds, timeVerified, ...(image !== undefined ? { image } : {}) }), identity))
  })
  await writeFile(file, lines.map(l => l + '\n').join(''))
}

/** Per dissenting target, the causes its builders found; the newest report per signer. */
function divergenceSection (targets: Array<{ key: string, variant: string, platform: string, dissenting: unknown[] }>, reports: Array<{ keyId: string, report: DivergenceReport }>): string {
  const lines: string[] = []
  for (const t of targets) {
    if (t.dissenting.length === 0) continue
    const seen = new Set<string>()
    for (const r of reports) {
      const { target } = r.report
      if (`${target.variant} ${target.platform}` !== `${t.variant} ${t.platform}` || seen.has(r.keyId)) continue
      seen.add(r.keyId)
      if (lines.length === 0) lines.push('')
      lines.push(`${t.variant} ${t.platform}:`, ...formatReport(r.report, r.keyId.slice(0, 12)).map(l => `  ${l}`))
    }
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : ''
}

/**
 * How the node behind `--node` is reached (its `/api/v1/peers`): public, port-mapped or
 * relayed, through which relays, how many connections are direct. Informational: a node
 * without the route, or one that fails to answer, gives undefined.
 */
async function nodeReachability (nodeUrl: string): Promise<Reachability | undefined> {
  try {
    const got = await getFromNode(nodeUrl, '/api/v1/peers', { accept: 'application/json', timeoutMs: 10_000, maxBytes: 256 * 1024, missingOk: true })
    if (got === undefined) return undefined
    const r = jsonFromNode(got) as Partial<Reachability>
    const count = (n: unknown): number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0
    const strings = (a: unknown): string[] => Array.isArray(a) ? a.filter((s): s is string => typeof s === 'string').slice(0, 64).map(s => s.slice(0, 256)) : []
    if (!['public', 'port-mapped', 'relayed', 'local'].includes(r.mode as string)) return undefined
    return {
      mode: r.mode as Reachability['mode'],
      addresses: strings(r.addresses),
      relays: strings(r.relays),
      connections: { direct: count(r.connections?.direct), relayed: count(r.connections?.relayed) },
      relayServer: { serving: r.relayServer?.serving === true, reservations: count(r.relayServer?.reservations) }
    }
  } catch {
    return undefined
  }
}

export function register (program: Command): void {
  program.command('status')
    .description('Print, per variant and platform, whether a release is reproducible under a trust policy; exit 0 only if every target is reproducible (and matches the registry where checked)')
    .argument('<tag>', 'release tag, e.g. v3.0.0')
    .option('--repo <url>', 'repository of the release (needed when several repositories announce the same tag)')
    .option('--node <url>', 'read the signed claims from a node\'s HTTP feed and verify them here (the node\'s verdict is never used)')
    .option('--data-dir <dir>', 'read a node\'s store directly (default: $NEKO_DATA_DIR, else ~/.local/share/neko-rebuilder)')
    .option('--policy <file>', 'trust policy (default: $NEKO_POLICY, else DATA_DIR/policy.json)')
    .option('--json', 'print the consensus as JSON')
    .option('--vsa <file>', 'write a signed SLSA verification summary per target (DSSE, JSON Lines); needs --key')
    .option('--key <dir>', 'identity that signs the VSA')
    .option('--registry-check', 'compare the agreed digests with what the registry publishes for IMAGE:TAG')
    .option('--image <variant=repository>', 'published image repository of a variant (repeatable; implies --registry-check)', collect, [])
    .option('--insecure-registry', 'talk plain HTTP to the registry (loopback registries always are)')
    .action(async (tag: string, flags: StatusFlags) => {
      if (!WIRE.tag.test(tag)) throw new UsageError('tag', `not a tag name: ${JSON.stringify(tag.slice(0, 100))}`)
      if (flags.node !== undefined && flags.dataDir !== undefined) throw new UsageError('--node', 'give either --node or --data-dir, not both')
      if ((flags.vsa === undefined) !== (flags.key === undefined)) throw new UsageError(flags.vsa === undefined ? '--key' : '--vsa', '--vsa and --key go together')
      const overrides = parseImages(flags.image)
      const dataDir = flags.dataDir ?? process.env.NEKO_DATA_DIR ?? defaultDataDir(process.env)
      const { policy, file: policyFile } = await policyFor(flags, dataDir)
      const checked = flags.registryCheck === true || overrides.size > 0

      const source = await gather(tag, flags, policy, dataDir)
      let evaluation: ReleaseEvaluation
      let reports: Array<{ keyId: string, report: DivergenceReport }>
      let tests: TestResultSummary[]
      let images: ReadonlyMap<string, string> = new Map()
      try {
        const release = await readRelease(source, policy, tag, { repository: flags.repo })
        const a = release.chosen.announcement
        let published: ReadonlyMap<string, string> | undefined
        if (checked) {
          const variants = new Set(a.targets.map(t => t.variant))
          for (const v of overrides.keys()) {
            if (!variants.has(v)) throw new UsageError('--image', `${a.repository} ${tag} has no variant ${JSON.stringify(v)} (it has ${[...variants].join(', ')})`)
          }
          const registry = createRegistryClient({ logger: cliLogger() }, { timeoutMs: 15_000, ...(flags.insecureRegistry === true ? { insecure: true } : {}) })
          images = await imagesFor(a.recipe.name, overrides)
          published = await checkPublished({ registry }, images, { repository: a.repository, tag, commit: a.commit, targets: a.targets })
        }
        evaluation = evaluateRelease({ ...release, policy, published })
        reports = (await source.reports(a.repository)).filter(r => r.report.target.commit === a.commit)
        // Beside the verdicts, read after them: a test result never changes one.
        tests = summariseTestResults(evaluation.consensus.targets, await source.testResults(a.repository, a.commit), policy)
      } finally {
        await source.close()
      }

      const outcome = gateOutcome(evaluation.consensus.targets)
      const reach = flags.node !== undefined ? await nodeReachability(flags.node) : undefined
      if (flags.json === true) {
        process.stdout.write(JSON.stringify({ ...evaluation.consensus, outcome, divergences: reports.map(r => ({ keyId: r.keyId, ...r.report })), testResults: tests, ...(reach !== undefined ? { node: reach } : {}) }, null, 2) + '\n')
      } else {
        process.stdout.write(formatConsensus(evaluation.consensus, { publishedChecked: checked }))
        process.stdout.write(divergenceSection(evaluation.consensus.targets, reports))
        process.stdout.write(formatTestResults(tests))
        if (reach !== undefined) process.stdout.write(`node: ${formatReachability(reach)}\n`)
      }
      if (flags.vsa !== undefined && flags.key !== undefined) {
        await writeVsa(flags.vsa, flags.key, evaluation, policyFile, images)
        if (flags.json !== true) process.stdout.write(`VSA: ${evaluation.verdicts.length} signed summar${evaluation.verdicts.length === 1 ? 'y' : 'ies'} written to ${flags.vsa}\n`)
      }
      process.exitCode = exitCodeFor(outcome)
    })
}
