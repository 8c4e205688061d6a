/** A node's resolved settings: every value has been validated and defaulted. */
export interface NodeConfig {
  dataDir: string
  /** Directory of the node's signing identity (created on first run). */
  keyDir: string
  listen: string[]
  bootstrap: string[]
  /** Trust policy file; undefined means the built-in policy that trusts nobody. */
  policyFile?: string
  /** HTTP feed address, when enabled. */
  http?: { host: string, port: number }
  /** Builds run at once. */
  concurrency: number
  mdns: boolean
  /** `--build-all`: build every target this node can, not only its share (docs/node.md). */
  buildAll: boolean
  /** Wall-clock limit of one rebuild. */
  buildTimeoutMs: number
  /** Rebuild only releases announced at most this many days ago; 0: any age. */
  maxReleaseAgeDays: number
  /** `join --watch`: poll a repository's tags and announce new ones. */
  watch?: { url: string, announceKeyDir: string, intervalMs: number, recipe?: string }
  /** File manifests of recent rebuilds kept for peers that dissent: how many, how long, how many bytes. */
  keepManifests: { maxCount: number, maxAgeMs: number, maxBytes: number }
  /** OCI outputs of recent rebuilds kept to explain differing files from this side's bytes; maxCount 0 keeps none. */
  keepOutputs: { maxCount: number, maxAgeMs: number, maxBytes: number }
  /** Reachability behind a NAT (docs/volunteers.md). */
  nat: {
    upnp: boolean
    /** Relay slots to hold; 'auto': 2 when the host has no public address of its own. */
    relays: number | 'auto'
    relayServer: 'auto' | 'on' | 'off'
    relayLimits: { maxReservations: number, maxCircuitBytes: number, maxCircuitSeconds: number }
  }
  /** Time alone earns one push round of this node's checkpoints to its sampled witnesses per this long (ms; new entries earn rounds sooner). */
  witnessRoundMs: number
  /** C2SP tlog-witness over HTTP (docs/transparency.md): witnesses to push this node's checkpoints to, and further logs to witness. */
  tlogWitness?: { urls: Array<{ url: string, vkey: string }>, logs: string[] }
  /** `join --network-log ORIGIN`: the origin of the network log this node runs. */
  networkLog?: string
}

/** Settings as given (config file, environment or flags), before defaults and validation. */
export interface NodeSettings {
  dataDir?: string
  keyDir?: string
  listen?: string[]
  bootstrap?: string[]
  policy?: string
  http?: string
  concurrency?: number | string
  mdns?: boolean | string
  buildAll?: boolean | string
  buildTimeoutSeconds?: number | string
  maxReleaseAgeDays?: number | string
  watch?: string
  announceKey?: string
  watchIntervalSeconds?: number | string
  recipe?: string
  keepManifests?: number | string
  keepManifestsDays?: number | string
  keepManifestsMiB?: number | string
  keepOutputs?: number | string
  keepOutputsDays?: number | string
  keepOutputsMiB?: number | string
  upnp?: boolean | string
  relays?: number | string
  relayServer?: string
  relayMaxReservations?: number | string
  relayCircuitMiB?: number | string
  relayCircuitSeconds?: number | string
  /** Seconds per push round of the own checkpoints that time alone earns (docs/transparency.md, the push budget). */
  witnessRoundSeconds?: number | string
  /** `URL=VKEY`: a C2SP tlog-witness (submission prefix and cosignature/v1 verifier key) to push checkpoints to. */
  witnessUrls?: string[]
  /** Ed25519 note verifier keys of further logs this node witnesses over HTTP. */
  witnessLogs?: string[]
  /** Run a network log with this origin (a key name such as `example.org/neko-rebuilder/network-log`). */
  networkLog?: string
}
