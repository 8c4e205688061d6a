import { WIRE } from '../../protocol/patterns.js'
import type { Command } from 'commander'
import { ValidationError } from '../../protocol/errors.js'
import { verifierIdOf } from '../../protocol/vsa.js'
import { attestRelease, referrersTag, type TargetAttestation } from '../../node/attest/index.js'
import { defaultDataDir } from '../../node/config/resolve.js'
import { evaluateRelease } from '../../node/consensus/evaluate.js'
import { readRelease } from '../../node/consensus/release.js'
import { policyReference } from '../../node/daemon/policy.js'
import { readIdentity } from '../../node/identity-files.js'
import { loadDockerCredentials } from '../../node/registry/credentials.js'
import { createRegistryClient, createRegistryWriter } from '../../node/registry/index.js'
import { EXIT } from '../exit-codes.js'
import { cliLogger } from '../logger.js'
import { collect, imagesFor, parseImages } from '../images.js'
import { gather, type StatusFlags } from '../release-source.js'
import { policyFor } from '../trust-policy.js'

interface AttestFlags extends StatusFlags {
  key: string
  registryAuth?: string
  verifierId?: string
}

function line (t: TargetAttestation): string {
  if (t.error !== undefined) return `${t.variant} ${t.platform}: not attested: ${t.error}`
  const a = t.attach
  const attached = t.claims?.attached ?? 0
  return `${t.variant} ${t.platform} ${t.image ?? ''} ${t.result ?? ''}: VSA ${t.vsa ?? ''}, ${attached} claim${attached === 1 ? '' : 's'} (${t.claims?.pushed ?? 0} new), ` +
    `referrers ${a?.mode === 'api' ? 'through the referrers API' : `in tag ${referrersTag(t.image?.split('@')[1] ?? '')}`}${a?.cosignUpdated === true ? ', cosign .att updated' : ''}`
}

export function register (program: Command): void {
  program.command('attest')
    .description('Attach to each per-platform image of a release, on its registry, the signed VSA of its verdict and the builders\' signed claims (OCI referrers, cosign attestations)')
    .argument('<tag>', 'release tag, e.g. v3.0.0; also the image tag attested')
    .requiredOption('--key <dir>', 'identity that signs the VSAs (its key id becomes verifier.id)')
    .option('--repo <url>', 'repository of the release (needed when several repositories announce the same tag)')
    .option('--node <url>', 'read the signed claims from a node\'s HTTP feed and verify them here')
    .option('--data-dir <dir>', 'read a node\'s store directly (default: $NEKO_DATA_DIR, else ~/.local/share/neko-rebuilder)')
    .option('--policy <file>', 'trust policy (default: $NEKO_POLICY, else DATA_DIR/policy.json)')
    .option('--image <variant=repository>', 'published image repository of a variant (repeatable; default: the recipe\'s images)', collect, [])
    .option('--registry-auth <file>', 'Docker config.json with credentials for the registry (default: $NEKO_REGISTRY_AUTH; anonymous otherwise)')
    .option('--insecure-registry', 'talk plain HTTP to the registry (loopback registries always are)')
    .option('--verifier-id <uri>', 'verifier.id of the VSAs: a URI the signer controls (default: urn:neko-rebuilder:key:<key id>)')
    .option('--json', 'print one JSON object per target')
    .action(async (tag: string, flags: AttestFlags) => {
      if (!WIRE.tag.test(tag)) throw new ValidationError('tag', `not a tag name: ${JSON.stringify(tag.slice(0, 100))}`)
      if (flags.node !== undefined && flags.dataDir !== undefined) throw new ValidationError('--node', 'give either --node or --data-dir, not both')
      if (flags.verifierId !== undefined && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(flags.verifierId)) throw new ValidationError('--verifier-id', `not a URI: ${JSON.stringify(flags.verifierId)}`)
      const overrides = parseImages(flags.image)
      const dataDir = flags.dataDir ?? process.env.NEKO_DATA_DIR ?? defaultDataDir(process.env)
      const { policy, file: policyFile } = await policyFor(flags, dataDir)
      const policyRef = await policyReference(policyFile)
      const identity = await readIdentity(flags.key, { logger: cliLogger() })
      const authFile = flags.registryAuth ?? process.env.NEKO_REGISTRY_AUTH
      const credentials = authFile !== undefined ? await loadDockerCredentials(authFile) : undefined
      const common = { timeoutMs: 30_000, ...(flags.insecureRegistry === true ? { insecure: true } : {}), ...(credentials !== undefined ? { credentials } : {}) }

      const source = await gather(tag, flags, policy, dataDir)
      const results: TargetAttestation[] = []
      try {
        // The one trust rule: no release, hence nothing pushed, without a trusted announcement.
        const release = await readRelease(source, policy, tag, { repository: flags.repo })
        const { claims } = release
        const a = release.chosen.announcement
        const evaluation = evaluateRelease({ ...release, policy })
        const logger = cliLogger()
        await attestRelease({ registry: createRegistryClient({ logger }, common), writer: createRegistryWriter({ logger }, common), log: logger.forComponent('attest') }, {
          evaluation,
          claims,
          images: await imagesFor(a.recipe.name, overrides),
          tag,
          identity,
          verifierId: flags.verifierId ?? verifierIdOf(identity.keyId),
          policyUri: policyRef.uri,
          policyDigest: policyRef.digest,
          onTarget: t => { results.push(t) }
        })
      } finally {
        await source.close()
        // The results as one block after every log record, not between them (what was done, too, when a later target threw).
        await cliLogger().flush()
        process.stdout.write(results.map(t => (flags.json === true ? JSON.stringify(t) : line(t)) + '\n').join(''))
      }
      process.exitCode = results.some(t => t.error !== undefined) ? EXIT.ERROR : EXIT.OK
    })
}
