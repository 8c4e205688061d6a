/** in-toto ResourceDescriptor (https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md), the parts used here. */
export interface ResourceDescriptor {
  name?: string
  uri?: string
  digest?: Record<string, string>
  mediaType?: string
  annotations?: Record<string, unknown>
}

/** in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md). */
export interface Statement {
  _type: 'https://in-toto.io/Statement/v1'
  subject: ResourceDescriptor[]
  predicateType: string
  predicate: Record<string, unknown>
}
