import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ValidationError } from '../protocol/errors.js'
import { createStore, type StoreComponents } from '../node/store/level-store.js'
import type { Store } from '../node/store/types.js'
import { StoreLockedError } from '../node/consensus/errors.js'

/** Where a node keeps its level store inside its data directory. */
const STORE_DIR = 'store'

/** The store directory of a data dir: `DIR/store`, or DIR itself when it is a LevelDB directory. */
function storePathOf (dataDir: string): string | undefined {
  for (const p of [join(dataDir, STORE_DIR), dataDir]) {
    if (existsSync(join(p, 'CURRENT'))) return p
  }
  return undefined
}

/**
 * Opens an existing store for reading (never creates one: a mistyped path must not look
 * like an empty store). A store held by a running node is reported as such.
 */
export async function openExistingStore (dataDir: string, components: StoreComponents = {}): Promise<Store> {
  const path = storePathOf(dataDir)
  if (path === undefined) throw new ValidationError('--data-dir', `no node store in ${dataDir} (looked for ${join(dataDir, STORE_DIR)})`)
  try {
    return await createStore(components, { path })
  } catch (err) {
    if (err instanceof StoreLockedError) throw new StoreLockedError(path, 'ask that node instead with --node http://HOST:PORT (its --http address)')
    throw err
  }
}
