/** OCI image archives as buildx exports them: reading the index, streaming a layer's files, unpacking a layout. */
export { readOciArchive, imageResultOf, streamBlob, platformString } from './archive.js'
export type { OciArchiveInfo, OciImage, OciLayer, OciDescriptor } from './archive.js'
export { listLayerFiles, jsonStart, HEAD_BYTES } from './layer-files.js'
export type { LayerFile, LayerListing, ListOptions } from './layer-files.js'
export { extractOciArchive } from './layout.js'
export { OciArchiveError } from './errors.js'
