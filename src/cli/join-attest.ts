import { ValidationError } from '../protocol/errors.js'
import { createAttestService, type AttestService } from '../node/attest/index.js'
import type { NodeConfig } from '../node/config/index.js'
import { policyReference } from '../node/daemon/policy.js'
import type { RunningNode } from '../node/daemon/run.js'
import { readIdentity } from '../node/identity-files.js'
import { loadDockerCredentials } from '../node/registry/credentials.js'
import { createRegistryClient, createRegistryWriter } from '../node/registry/index.js'
import { parseImages } from './images.js'

/** `join --attest`: the node attaches the verdicts of the releases it holds to their images. */
export async function startAttesting ({ daemon, logger }: RunningNode, config: NodeConfig, opts: { attest?: string[], attestAuth?: string, attestEvery?: string }): Promise<AttestService> {
  const images = parseImages(opts.attest ?? [])
  if (config.policyFile == null) throw new ValidationError('--attest', 'needs a trust policy (--policy): a node that trusts nobody has no verdict to attest')
  const interval = opts.attestEvery !== undefined ? Number(opts.attestEvery) : 600
  if (!Number.isInteger(interval) || interval < 10) throw new ValidationError('--attest-every', `expected whole seconds, at least 10, got ${JSON.stringify(opts.attestEvery)}`)
  const authFile = opts.attestAuth ?? process.env.NEKO_REGISTRY_AUTH
  const credentials = authFile !== undefined ? await loadDockerCredentials(authFile) : undefined
  const common = { timeoutMs: 30_000, ...(credentials !== undefined ? { credentials } : {}) }
  const policyRef = await policyReference(config.policyFile)
  const service = createAttestService({
    store: daemon.store,
    policy: daemon.policy(),
    identity: await readIdentity(config.keyDir, { logger }),
    registry: createRegistryClient({ logger }, common),
    writer: createRegistryWriter({ logger }, common),
    log: logger.forComponent('attest')
  }, {
    images,
    policyUri: policyRef.uri,
    policyDigest: policyRef.digest,
    intervalMs: interval * 1000
  })
  await service.start()
  // From its own cursor: what was stored while the node ran without --attest is attested too.
  await daemon.follow(service.follower)
  return service
}
