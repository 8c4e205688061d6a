import type { SigningIdentity } from '../../protocol/keys.js'
import type { TileRef } from '../../protocol/tlog/tiles.js'
import type { Store } from '../store/types.js'
import type { ComponentLogger } from '../logger.js'

export interface TransparencyLogComponents {
  /** Where this service logs; silent without one. */
  logger?: ComponentLogger
  /** Where the messages come from: the log appends what the store holds, in cursor order. */
  store: Store
  /** Signs the checkpoints (the same Ed25519 key as the node's claims). */
  identity: SigningIdentity
}

export interface TransparencyLogInit {
  /** Directory of the log's own LevelDB database. */
  path: string
  /** Shortest time between two checkpoints while entries arrive (ms). */
  checkpointIntervalMs?: number
  /** Full level-0 tiles kept in memory for proofs (default 256, 16 KiB each). */
  cacheTiles?: number
  /** How often an idle log announces its latest checkpoint again (ms); never when absent (the default): a checkpoint is announced when it changes. */
  republishIntervalMs?: number
}

export interface InclusionAnswer {
  /** The message's envelope id and kind: the entry is `<kind> <id>\n`. */
  id: string
  kind: 'announcement' | 'claim'
  /** The log's note verifier key. */
  vkey: string
  index: number
  /** The tree size the proof is for: the size of `checkpoint`. */
  size: number
  /** Base64 hashes, leaf end first. */
  proof: string[]
  /** The signed checkpoint (with any cosignatures) the proof leads to. */
  checkpoint: string
}

export interface TransparencyLog {
  /** The checkpoint origin, also the note key name. */
  readonly origin: string
  /** The note verifier key of the log, `<origin>+<hash>+<key>`. */
  readonly vkey: string
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Appends whatever the store holds beyond what is logged; resolves once it is durable. */
  sync: () => Promise<void>
  /** Entries appended (and durable). */
  size: () => number
  /** The latest signed checkpoint with the cosignatures collected for it. */
  checkpoint: () => string | undefined
  /** The latest checkpoint's size (0 before the first). */
  checkpointSize: () => number
  /** The kept recent checkpoints (RECENT_CHECKPOINTS at most), newest first, each with its cosignatures. */
  checkpoints: () => Array<{ size: number, note: string }>
  /** Times the latest checkpoint was announced again while the log was idle. */
  republished: () => number
  /** Signs a checkpoint of everything appended now, if newer than the last. */
  publishCheckpoint: () => Promise<string | undefined>
  /** A hash tile or entry bundle, when the tree is that wide. */
  tile: (ref: TileRef) => Promise<Buffer | undefined>
  /** Where a stored message sits and the proof it is in the latest checkpoint. */
  inclusion: (id: string) => Promise<InclusionAnswer | undefined>
  /** An RFC 6962 consistency proof between two sizes the log has reached. */
  consistency: (oldSize: number, newSize: number) => Promise<Uint8Array[]>
  /** Adds witness cosignature lines to a kept recent checkpoint with this text (saved at once); returns how many were new. */
  addCosignatures: (checkpointText: string, lines: string[]) => Promise<number>
  /** Called after each new checkpoint is signed, and with the latest one again while idle. */
  onCheckpoint: (cb: (note: string) => void) => void
}
