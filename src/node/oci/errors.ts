import { NekoError } from '../../protocol/errors.js'

/** An OCI archive is not what an OCI image layout export should be. */
export class OciArchiveError extends NekoError {
  override name = 'OciArchiveError'
  override readonly code = 'ERR_OCI_ARCHIVE'
}
