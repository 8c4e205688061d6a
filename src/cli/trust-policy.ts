import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { TrustPolicy } from '../protocol/policy.js'
import { DATA_DIR_POLICY } from '../node/config/resolve.js'
import { loadPolicyFile } from '../node/daemon/policy.js'
import { UsageError } from './errors.js'

/** The trust policy a reading command judges by: `--policy`, else $NEKO_POLICY, else DATA_DIR/policy.json. */
export async function policyFor (flags: { policy?: string }, dataDir: string): Promise<{ policy: TrustPolicy, file: string }> {
  const file = flags.policy ?? process.env.NEKO_POLICY ?? join(dataDir, DATA_DIR_POLICY)
  if (flags.policy === undefined && process.env.NEKO_POLICY === undefined && !existsSync(file)) {
    throw new UsageError('--policy', `no trust policy given and none at ${file}; pass --policy FILE (status verifies every claim against it)`)
  }
  return { policy: await loadPolicyFile(file), file: resolve(file) }
}
