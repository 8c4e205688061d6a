import type { NodeSettings } from './types.js'

/** Environment variable for each setting; lists are comma-separated. */
export const ENV_VARS: Record<keyof NodeSettings, string> = {
  dataDir: 'NEKO_DATA_DIR',
  keyDir: 'NEKO_KEY_DIR',
  listen: 'NEKO_LISTEN',
  bootstrap: 'NEKO_BOOTSTRAP',
  policy: 'NEKO_POLICY',
  http: 'NEKO_HTTP',
  concurrency: 'NEKO_CONCURRENCY',
  mdns: 'NEKO_MDNS',
  buildAll: 'NEKO_BUILD_ALL',
  buildTimeoutSeconds: 'NEKO_BUILD_TIMEOUT',
  maxReleaseAgeDays: 'NEKO_MAX_RELEASE_AGE',
  watch: 'NEKO_WATCH',
  announceKey: 'NEKO_ANNOUNCE_KEY',
  watchIntervalSeconds: 'NEKO_WATCH_INTERVAL',
  recipe: 'NEKO_RECIPE',
  keepManifests: 'NEKO_KEEP_MANIFESTS',
  keepManifestsDays: 'NEKO_KEEP_MANIFESTS_DAYS',
  keepManifestsMiB: 'NEKO_KEEP_MANIFESTS_MIB',
  keepOutputs: 'NEKO_KEEP_OUTPUTS',
  keepOutputsDays: 'NEKO_KEEP_OUTPUTS_DAYS',
  keepOutputsMiB: 'NEKO_KEEP_OUTPUTS_MIB',
  upnp: 'NEKO_UPNP',
  relays: 'NEKO_RELAYS',
  relayServer: 'NEKO_RELAY_SERVER',
  relayMaxReservations: 'NEKO_RELAY_MAX_RESERVATIONS',
  relayCircuitMiB: 'NEKO_RELAY_CIRCUIT_MIB',
  relayCircuitSeconds: 'NEKO_RELAY_CIRCUIT_SECONDS',
  witnessRoundSeconds: 'NEKO_WITNESS_ROUND_SECONDS',
  witnessUrls: 'NEKO_WITNESS_URLS',
  witnessLogs: 'NEKO_WITNESS_LOGS',
  networkLog: 'NEKO_NETWORK_LOG'
}

const LISTS = new Set<keyof NodeSettings>(['listen', 'bootstrap', 'witnessUrls', 'witnessLogs'])

export function settingsFromEnv (env: NodeJS.ProcessEnv): NodeSettings {
  const out: Record<string, unknown> = {}
  for (const [setting, name] of Object.entries(ENV_VARS) as Array<[keyof NodeSettings, string]>) {
    const v = env[name]
    if (v == null || v.trim() === '') continue
    out[setting] = LISTS.has(setting) ? v.split(',').map(s => s.trim()).filter(s => s !== '') : v.trim()
  }
  return out as NodeSettings
}
