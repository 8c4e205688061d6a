/** JSON Schema of a node config file (`join --config FILE`). Every member is optional. */
export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1 },
    keyDir: { type: 'string', minLength: 1 },
    listen: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 32 },
    bootstrap: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 256 },
    policy: { type: 'string', minLength: 1 },
    http: { type: 'string', minLength: 1 },
    concurrency: { type: 'integer', minimum: 1, maximum: 64 },
    mdns: { type: 'boolean' },
    buildAll: { type: 'boolean' },
    buildTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
    maxReleaseAgeDays: { type: 'integer', minimum: 0, maximum: 36_500 },
    watch: { type: 'string', minLength: 1 },
    announceKey: { type: 'string', minLength: 1 },
    watchIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86_400 },
    recipe: { type: 'string', minLength: 1 },
    keepManifests: { type: 'integer', minimum: 1, maximum: 100_000 },
    keepManifestsDays: { type: 'integer', minimum: 1, maximum: 3650 },
    keepManifestsMiB: { type: 'integer', minimum: 1, maximum: 1_048_576 },
    keepOutputs: { type: 'integer', minimum: 0, maximum: 1000 },
    keepOutputsDays: { type: 'integer', minimum: 1, maximum: 3650 },
    keepOutputsMiB: { type: 'integer', minimum: 1, maximum: 16_777_216 },
    upnp: { type: 'boolean' },
    relays: { oneOf: [{ type: 'integer', minimum: 0, maximum: 16 }, { const: 'auto' }] },
    relayServer: { enum: ['auto', 'on', 'off'] },
    relayMaxReservations: { type: 'integer', minimum: 1, maximum: 4096 },
    relayCircuitMiB: { type: 'integer', minimum: 1, maximum: 1024 },
    relayCircuitSeconds: { type: 'integer', minimum: 1, maximum: 3600 }
  }
} as const
