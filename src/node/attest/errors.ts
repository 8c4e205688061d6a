import { NekoError } from '../../protocol/errors.js'

/** The tag pointed elsewhere when the attestations were about to be pushed than when the verdict was read. */
export class TagMovedError extends NekoError {
  override name = 'TagMovedError'
  override readonly code = 'ERR_TAG_MOVED'
  constructor (readonly reference: string, readonly before: string, readonly after: string) {
    super(`${reference} moved from ${before} to ${after} while attesting; nothing more was pushed (what is attached stays attached to the digests it names); run attest again`)
  }
}

/** A variant of the release has no published image to attach to. */
export class NoImageError extends NekoError {
  override name = 'NoImageError'
  override readonly code = 'ERR_NO_IMAGE'
  constructor (readonly variant: string) {
    super(`no published image repository for variant ${variant}; pass --image ${variant}=REPOSITORY`)
  }
}
