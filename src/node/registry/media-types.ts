/** Manifest media types this client reads, OCI and Docker schema 2. */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

export const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST]
export const MANIFEST_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST]

/** The `Accept` header for manifest requests: without it registries may down-convert to schema 1. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ')

/** Annotation BuildKit puts on the index entries that hold attestations (provenance, SBOM). */
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type'
export const ATTESTATION_MANIFEST = 'attestation-manifest'

/** OCI 1.1: the empty JSON config of artifacts (`{}`), and the referrers tag schema's index. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'
export const OCI_EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
/** A DSSE envelope as a layer, as cosign stores attestations. */
export const DSSE_ENVELOPE = 'application/vnd.dsse.envelope.v1+json'
