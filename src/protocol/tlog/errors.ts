import { NekoError } from '../errors.js'

/** A Merkle proof does not prove what it claims (wrong length, wrong root, sizes out of order). */
export class ProofError extends NekoError {
  override name = 'ProofError'
  override readonly code = 'ERR_TLOG_PROOF'
}

/** A signed note, checkpoint or cosignature is malformed or carries no valid signature by the expected key. */
export class NoteError extends NekoError {
  override name = 'NoteError'
  override readonly code = 'ERR_TLOG_NOTE'
}
