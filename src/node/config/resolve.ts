import { existsSync, readFileSync, statSync } from 'node:fs'
import { availableParallelism, homedir, totalmem } from 'node:os'
import { isAbsolute, join, resolve as resolvePath } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Ajv } from 'ajv'
import { ConfigError } from './errors.js'
import { ENV_VARS, settingsFromEnv } from './env.js'
import { RELAY_DEFAULTS } from '../p2p/nat.js'
import { CONFIG_SCHEMA } from './schema.js'
import { parseWitnessTargets } from '../tlog/witness-push.js'
import { witnessedLogKeys } from '../tlog/http-witness.js'
import { DEFAULT_PUSH_FLOOR_MS } from '../tlog/push-budget.js'
import { isValidKeyName } from '../../protocol/tlog/note.js'
import { absoluteRepository } from '../rebuilder/index.js'
import type { NodeConfig, NodeSettings } from './types.js'

export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4088'
const DEFAULT_WATCH_INTERVAL_SECONDS = 300
const DEFAULT_BUILD_TIMEOUT_SECONDS = 3 * 3600
/** A new node rebuilds the releases of the last month, not a network's whole history. */
const DEFAULT_MAX_RELEASE_AGE_DAYS = 30
/** What one image build wants (BuildKit and its steps): cores and memory. */
const BUILD_CORES = 4
const BUILD_MEMORY_BYTES = 8 * 1024 ** 3

/**
 * Builds at once when none is configured: as many as the cores and the memory both allow,
 * at least one (a Neko build wants about 4 cores and 8 GiB).
 */
export function defaultConcurrency (cores = availableParallelism(), memoryBytes = totalmem()): number {
  return Math.max(1, Math.min(64, Math.floor(cores / BUILD_CORES), Math.floor(memoryBytes / BUILD_MEMORY_BYTES)))
}

/** A policy at this name in the data dir is used when none is configured. */
export const DATA_DIR_POLICY = 'policy.json'

export interface ResolveInput {
  /** Flags as parsed (only those given). */
  flags?: NodeSettings & { config?: string }
  env?: NodeJS.ProcessEnv
}

type Problem = ConstructorParameters<typeof ConfigError>[0][number]

export function defaultDataDir (env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_DATA_HOME
  const base = xdg != null && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share')
  return join(base, 'neko-rebuilder')
}

/** Reads and schema-checks a JSON config file; every bad member is named. */
export function readConfigFile (file: string): NodeSettings {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ setting: 'config', source: file, message: `cannot read: ${(err as Error).message}` }])
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError([{ setting: 'config', source: file, message: `not JSON: ${(err as Error).message}` }])
  }
  const ajv = new Ajv({ allErrors: true })
  const validate = ajv.compile(CONFIG_SCHEMA)
  if (!validate(json)) {
    throw new ConfigError((validate.errors ?? []).map(e => {
      const where = e.instancePath === '' ? '' : e.instancePath.slice(1).replace(/\//g, '.')
      const setting = e.keyword === 'additionalProperties'
        ? String((e.params as { additionalProperty: string }).additionalProperty)
        : where === '' ? 'config' : where
      return { setting, source: file, message: e.keyword === 'additionalProperties' ? 'unknown setting' : (e.message ?? 'invalid') }
    }))
  }
  return json as NodeSettings
}

function parseInteger (v: number | string, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
}

function parseBool (v: boolean | string): boolean | undefined {
  if (typeof v === 'boolean') return v
  const s = v.trim().toLowerCase()
  if (['1', 'true', 'yes', 'on'].includes(s)) return true
  if (['0', 'false', 'no', 'off'].includes(s)) return false
  return undefined
}

/** `HOST:PORT`, `:PORT` or `PORT` (host then defaults to 127.0.0.1); IPv6 as `[::1]:PORT`. */
export function parseHttpAddress (v: string): { host: string, port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(v.trim()) ?? /^()()(\d+)$/.exec(v.trim())
  if (m == null) return undefined
  const port = parseInteger(m[3]!, 0, 65535)
  if (port == null) return undefined
  const bracketed = m[1] != null && m[1] !== '' ? m[1] : undefined
  const host = bracketed ?? (m[2] == null || m[2] === '' ? '127.0.0.1' : m[2])
  return { host, port }
}

/**
 * Resolves a node's settings with precedence flag > environment > config file > default,
 * validates each and reports every bad one at once (naming the setting and its source).
 */
export function resolveConfig (input: ResolveInput = {}): NodeConfig {
  const env = input.env ?? process.env
  const flags = input.flags ?? {}
  const configFile = flags.config ?? env.NEKO_CONFIG
  const file = configFile != null && configFile !== '' ? readConfigFile(configFile) : {}
  const fromEnv = settingsFromEnv(env)
  const problems: Problem[] = []

  function pick<K extends keyof NodeSettings> (key: K): { value: NodeSettings[K], source: string } | undefined {
    const defined = (v: unknown): boolean => v !== undefined && !(Array.isArray(v) && v.length === 0)
    if (defined(flags[key])) return { value: flags[key], source: 'flag' }
    if (defined(fromEnv[key])) return { value: fromEnv[key], source: `env ${ENV_VARS[key]}` }
    if (defined(file[key])) return { value: file[key], source: `config ${configFile ?? ''}` }
    return undefined
  }

  // Relative paths in a config file are relative to the working directory, like flags.
  const dataDir = resolvePath(pick('dataDir')?.value ?? defaultDataDir(env))
  const keyDir = resolvePath(pick('keyDir')?.value ?? join(dataDir, 'identity'))

  function addrs (key: 'listen' | 'bootstrap', fallback: string[]): string[] {
    const got = pick(key)
    const list = got?.value ?? fallback
    for (const a of list) {
      try {
        multiaddr(a)
      } catch (err) {
        problems.push({ setting: key, source: got?.source ?? 'default', message: `bad multiaddr "${a}": ${(err as Error).message}` })
      }
    }
    return list
  }
  const listen = addrs('listen', [DEFAULT_LISTEN])
  const bootstrap = addrs('bootstrap', [])

  let policyFile: string | undefined
  const policy = pick('policy')
  if (policy != null) {
    policyFile = resolvePath(policy.value!)
    if (!existsSync(policyFile) || !statSync(policyFile).isFile()) {
      problems.push({ setting: 'policy', source: policy.source, message: `policy file ${policyFile} does not exist` })
    }
  } else if (existsSync(join(dataDir, DATA_DIR_POLICY))) {
    policyFile = join(dataDir, DATA_DIR_POLICY)
  }

  let http: NodeConfig['http']
  const httpSetting = pick('http')
  if (httpSetting != null) {
    http = parseHttpAddress(httpSetting.value!)
    if (http == null) problems.push({ setting: 'http', source: httpSetting.source, message: `bad address "${httpSetting.value}" (expected HOST:PORT with a port from 0 to 65535)` })
  }

  function integer (key: 'concurrency' | 'buildTimeoutSeconds' | 'watchIntervalSeconds' | 'maxReleaseAgeDays' | 'keepManifests' | 'keepManifestsDays' | 'keepManifestsMiB' | 'keepOutputs' | 'keepOutputsDays' | 'keepOutputsMiB' | 'relays' | 'relayMaxReservations' | 'relayCircuitMiB' | 'relayCircuitSeconds' | 'witnessRoundSeconds', fallback: number, min: number, max: number): number {
    const got = pick(key)
    if (got == null) return fallback
    const n = parseInteger(got.value!, min, max)
    if (n == null) {
      problems.push({ setting: key, source: got.source, message: `"${String(got.value)}" is not an integer from ${min} to ${max}` })
      return fallback
    }
    return n
  }
  const concurrency = integer('concurrency', defaultConcurrency(), 1, 64)
  const buildTimeoutMs = integer('buildTimeoutSeconds', DEFAULT_BUILD_TIMEOUT_SECONDS, 1, 86_400) * 1000
  const intervalMs = integer('watchIntervalSeconds', DEFAULT_WATCH_INTERVAL_SECONDS, 1, 86_400) * 1000
  const maxReleaseAgeDays = integer('maxReleaseAgeDays', DEFAULT_MAX_RELEASE_AGE_DAYS, 0, 36_500)
  const keepManifests = {
    maxCount: integer('keepManifests', 100, 1, 100_000),
    maxAgeMs: integer('keepManifestsDays', 30, 1, 3650) * 24 * 3600_000,
    maxBytes: integer('keepManifestsMiB', 1024, 1, 1_048_576) * 1024 * 1024
  }
  const keepOutputs = {
    maxCount: integer('keepOutputs', 3, 0, 1000),
    maxAgeMs: integer('keepOutputsDays', 7, 1, 3650) * 24 * 3600_000,
    maxBytes: integer('keepOutputsMiB', 8192, 1, 16_777_216) * 1024 * 1024
  }

  function bool (key: 'mdns' | 'upnp' | 'buildAll', fallback: boolean): boolean {
    const got = pick(key)
    if (got == null) return fallback
    const b = parseBool(got.value!)
    if (b == null) problems.push({ setting: key, source: got.source, message: `"${String(got.value)}" is not a boolean` })
    return b ?? fallback
  }
  const mdns = bool('mdns', true)
  const buildAll = bool('buildAll', false)

  const relaysSetting = pick('relays')
  const relays = relaysSetting == null || String(relaysSetting.value).trim() === 'auto' ? 'auto' : integer('relays', 0, 0, 16)
  const relayServerSetting = pick('relayServer')
  let relayServer: NodeConfig['nat']['relayServer'] = 'auto'
  if (relayServerSetting != null) {
    const v = String(relayServerSetting.value).trim()
    if (v === 'auto' || v === 'on' || v === 'off') relayServer = v
    else problems.push({ setting: 'relayServer', source: relayServerSetting.source, message: `"${v}" is not one of auto, on, off` })
  }
  const nat: NodeConfig['nat'] = {
    upnp: bool('upnp', true),
    relays,
    relayServer,
    relayLimits: {
      maxReservations: integer('relayMaxReservations', RELAY_DEFAULTS.maxReservations, 1, 4096),
      maxCircuitBytes: integer('relayCircuitMiB', RELAY_DEFAULTS.maxCircuitBytes / 1024 / 1024, 1, 1024) * 1024 * 1024,
      maxCircuitSeconds: integer('relayCircuitSeconds', RELAY_DEFAULTS.maxCircuitSeconds, 1, 3600)
    }
  }

  let watch: NodeConfig['watch']
  const watchUrl = pick('watch')
  const announceKey = pick('announceKey')
  if (watchUrl != null) {
    if (announceKey == null) problems.push({ setting: 'announceKey', source: watchUrl.source, message: '--watch needs --announce-key DIR (the key that signs announcements)' })
    else {
      const recipe = pick('recipe')?.value
      watch = { url: absoluteRepository(watchUrl.value!), announceKeyDir: resolvePath(announceKey.value!), intervalMs, ...(recipe != null ? { recipe } : {}) }
    }
  }

  const witnessRoundMs = integer('witnessRoundSeconds', DEFAULT_PUSH_FLOOR_MS / 1000, 1, 86_400) * 1000

  let tlogWitness: NodeConfig['tlogWitness']
  const witnessUrls = pick('witnessUrls')
  const witnessLogs = pick('witnessLogs')
  if (witnessUrls != null || witnessLogs != null) {
    const urls: Array<{ url: string, vkey: string }> = []
    for (const v of witnessUrls?.value ?? []) {
      // URL=VKEY: a submission prefix holds no '=', a verifier key may.
      const eq = v.indexOf('=')
      try {
        if (eq < 0) throw new Error('expected URL=VKEY (the witness\'s submission prefix and its cosignature/v1 verifier key)')
        urls.push(...parseWitnessTargets([{ url: v.slice(0, eq), vkey: v.slice(eq + 1) }]).map(t => ({ url: t.url, vkey: t.vkey })))
      } catch (err) {
        problems.push({ setting: 'witnessUrls', source: witnessUrls?.source ?? 'default', message: `"${v.slice(0, 200)}": ${(err as Error).message}` })
      }
    }
    const logs = witnessLogs?.value ?? []
    try {
      witnessedLogKeys(new Map(), logs)
    } catch (err) {
      problems.push({ setting: 'witnessLogs', source: witnessLogs?.source ?? 'default', message: (err as Error).message })
    }
    tlogWitness = { urls, logs }
  }

  const networkLogSetting = pick('networkLog')
  const networkLog = networkLogSetting?.value?.trim()
  if (networkLogSetting != null && (networkLog === undefined || !isValidKeyName(networkLog) || networkLog.startsWith('neko-rebuilder/'))) {
    problems.push({ setting: 'networkLog', source: networkLogSetting.source, message: `"${String(networkLog).slice(0, 200)}" is not a log origin: a key name without spaces or +, outside neko-rebuilder/ (e.g. example.org/neko-rebuilder/network-log)` })
  }

  if (problems.length > 0) throw new ConfigError(problems)
  return { dataDir, keyDir, listen, bootstrap, policyFile, http, concurrency, mdns, buildAll, buildTimeoutMs, maxReleaseAgeDays, watch, keepManifests, keepOutputs, nat, witnessRoundMs, ...(tlogWitness !== undefined ? { tlogWitness } : {}), ...(networkLog !== undefined ? { networkLog } : {}) }
}
