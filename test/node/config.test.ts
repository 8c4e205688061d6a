import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError, parseHttpAddress, resolveConfig } from '../../src/node/config/index.js'
import { defaultConcurrency } from '../../src/node/config/resolve.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { ALG_COSIGNATURE_V1, formatVerifierKey, witnessName } from '../../src/protocol/tlog/index.js'

describe('node config', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-config-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('builds at once: one per 4 cores and 8 GiB, whichever is fewer, at least one', () => {
    const GiB = 1024 ** 3
    expect(defaultConcurrency(2, 4 * GiB)).toBe(1)
    expect(defaultConcurrency(16, 64 * GiB)).toBe(4)
    expect(defaultConcurrency(64, 16 * GiB)).toBe(2)
    expect(defaultConcurrency(8, 256 * GiB)).toBe(2)
  })

  it('defaults under XDG_DATA_HOME', () => {
    const c = resolveConfig({ env: { XDG_DATA_HOME: dir } })
    expect(c.dataDir).toBe(join(dir, 'neko-rebuilder'))
    expect(c.keyDir).toBe(join(dir, 'neko-rebuilder', 'identity'))
    expect(c.listen).toEqual(['/ip4/0.0.0.0/tcp/4088'])
    expect(c.bootstrap).toEqual([])
    expect(c.mdns).toBe(true)
    expect(c.concurrency).toBe(defaultConcurrency())
    expect(c.policyFile).toBeUndefined()
    expect(c.http).toBeUndefined()
  })

  it('takes flag over env over config file', async () => {
    const policy = join(dir, 'p.json')
    await writeFile(policy, '{}')
    const file = join(dir, 'c.json')
    await writeFile(file, JSON.stringify({ dataDir: join(dir, 'from-file'), concurrency: 3, listen: ['/ip4/127.0.0.1/tcp/1'], mdns: false, policy }))
    const env = { NEKO_DATA_DIR: join(dir, 'from-env'), NEKO_LISTEN: '/ip4/127.0.0.1/tcp/2,/ip4/127.0.0.1/tcp/3', NEKO_HTTP: '127.0.0.1:8080' }
    const c = resolveConfig({ env, flags: { config: file, listen: ['/ip4/127.0.0.1/tcp/4'] } })
    expect(c.listen).toEqual(['/ip4/127.0.0.1/tcp/4'])
    expect(c.dataDir).toBe(join(dir, 'from-env'))
    expect(c.concurrency).toBe(3)
    expect(c.mdns).toBe(false)
    expect(c.policyFile).toBe(policy)
    expect(c.http).toEqual({ host: '127.0.0.1', port: 8080 })
    const c2 = resolveConfig({ env: { NEKO_MDNS: '0', NEKO_BOOTSTRAP: '/ip4/127.0.0.1/tcp/9' }, flags: { config: file } })
    expect(c2.dataDir).toBe(join(dir, 'from-file'))
    expect(c2.bootstrap).toEqual(['/ip4/127.0.0.1/tcp/9'])
  })

  it('names every bad setting', async () => {
    let err: unknown
    try {
      resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_HTTP: 'localhost:99999' }, flags: { listen: ['/ip4/not-an-ip/tcp/1'], policy: join(dir, 'missing.json'), concurrency: '0' } })
    } catch (e) { err = e }
    expect(err).toBeInstanceOf(ConfigError)
    const settings = (err as ConfigError).problems.map(p => p.setting).sort()
    expect(settings).toEqual(['concurrency', 'http', 'listen', 'policy'])
    expect((err as ConfigError).message).toMatch(/env NEKO_HTTP/)
  })

  it('shares work unless --build-all (or NEKO_BUILD_ALL, or buildAll in the file) says to build everything', async () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).buildAll).toBe(false)
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_BUILD_ALL: '1' } }).buildAll).toBe(true)
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { buildAll: true } }).buildAll).toBe(true)
    const file = join(dir, 'all.json')
    await writeFile(file, JSON.stringify({ buildAll: true }))
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { config: file } }).buildAll).toBe(true)
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_BUILD_ALL: 'maybe' } })).toThrow(/buildAll \(env NEKO_BUILD_ALL\): "maybe" is not a boolean/)
  })

  it('queues releases of the last 30 days unless told otherwise', async () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).maxReleaseAgeDays).toBe(30)
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_MAX_RELEASE_AGE: '0' } }).maxReleaseAgeDays).toBe(0)
    const file = join(dir, 'age.json')
    await writeFile(file, JSON.stringify({ maxReleaseAgeDays: 7 }))
    expect(resolveConfig({ env: {}, flags: { config: file } }).maxReleaseAgeDays).toBe(7)
    expect(resolveConfig({ env: { NEKO_MAX_RELEASE_AGE: '90' }, flags: { config: file, maxReleaseAgeDays: '365' } }).maxReleaseAgeDays).toBe(365)
    expect(() => resolveConfig({ env: {}, flags: { maxReleaseAgeDays: '-1' } })).toThrow(/maxReleaseAgeDays \(flag\): "-1" is not an integer from 0/)
  })

  it('keeps 3 rebuild outputs for 7 days within 8 GiB unless told otherwise; 0 keeps none', async () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).keepOutputs).toEqual({ maxCount: 3, maxAgeMs: 7 * 86_400_000, maxBytes: 8192 * 1024 * 1024 })
    const file = join(dir, 'outputs.json')
    await writeFile(file, JSON.stringify({ keepOutputs: 1, keepOutputsDays: 2 }))
    expect(resolveConfig({ env: { NEKO_KEEP_OUTPUTS_MIB: '100' }, flags: { config: file } }).keepOutputs).toEqual({ maxCount: 1, maxAgeMs: 2 * 86_400_000, maxBytes: 100 * 1024 * 1024 })
    expect(resolveConfig({ env: { NEKO_KEEP_OUTPUTS: '0' } }).keepOutputs.maxCount).toBe(0)
    expect(() => resolveConfig({ env: {}, flags: { keepOutputsMiB: '0' } })).toThrow(/keepOutputsMiB \(flag\): "0" is not an integer from 1/)
  })

  it('NAT settings: UPnP on, relay slots and relay server by the host\'s addresses, relay limits 32 / 8 MiB / 180 s unless told otherwise; bad values named', async () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).nat).toEqual({ upnp: true, relays: 'auto', relayServer: 'auto', relayLimits: { maxReservations: 32, maxCircuitBytes: 8 * 1024 * 1024, maxCircuitSeconds: 180 } })
    const file = join(dir, 'nat.json')
    await writeFile(file, JSON.stringify({ upnp: false, relays: 3, relayServer: 'on', relayCircuitMiB: 2 }))
    const c = resolveConfig({ env: { NEKO_RELAY_MAX_RESERVATIONS: '4' }, flags: { config: file, relayCircuitSeconds: '60' } })
    expect(c.nat).toEqual({ upnp: false, relays: 3, relayServer: 'on', relayLimits: { maxReservations: 4, maxCircuitBytes: 2 * 1024 * 1024, maxCircuitSeconds: 60 } })
    expect(resolveConfig({ env: { NEKO_UPNP: '0', NEKO_RELAYS: '0' } }).nat).toMatchObject({ upnp: false, relays: 0 })
    let err: unknown
    try {
      resolveConfig({ env: { NEKO_RELAY_SERVER: 'sometimes' }, flags: { relays: '99', relayCircuitMiB: '0' } })
    } catch (e) { err = e }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).problems.map(p => p.setting).sort()).toEqual(['relayCircuitMiB', 'relayServer', 'relays'])
    expect((err as ConfigError).message).toMatch(/relayServer \(env NEKO_RELAY_SERVER\): "sometimes" is not one of auto, on, off/)
  })

  it('witness rounds: one per 5 minutes earned by time unless told otherwise, from a file, the environment or a flag; bad values named', async () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).witnessRoundMs).toBe(300_000)
    const file = join(dir, 'round.json')
    await writeFile(file, JSON.stringify({ witnessRoundSeconds: 30 }))
    expect(resolveConfig({ env: {}, flags: { config: file } }).witnessRoundMs).toBe(30_000)
    expect(resolveConfig({ env: { NEKO_WITNESS_ROUND_SECONDS: '20' }, flags: { config: file } }).witnessRoundMs).toBe(20_000)
    expect(resolveConfig({ env: { NEKO_WITNESS_ROUND_SECONDS: '20' }, flags: { witnessRoundSeconds: '10' } }).witnessRoundMs).toBe(10_000)
    expect(() => resolveConfig({ env: {}, flags: { witnessRoundSeconds: '0' } })).toThrow(/witnessRoundSeconds \(flag\): "0" is not an integer from 1 to 86400/)
  })

  it('schema-checks a config file', async () => {
    const file = join(dir, 'bad.json')
    await writeFile(file, JSON.stringify({ concurrency: 'many', colour: 'blue', listen: [3] }))
    expect(() => resolveConfig({ env: {}, flags: { config: file } })).toThrow(/concurrency.*colour|colour.*concurrency/)
    await writeFile(file, '{ nope')
    expect(() => resolveConfig({ env: {}, flags: { config: file } })).toThrow(/not JSON/)
  })

  it('takes C2SP tlog-witness URLs with their keys and further witnessed logs; names a bad one', () => {
    const w = generateIdentity()
    const wkey = formatVerifierKey(witnessName(w.keyId), w.publicKey, ALG_COSIGNATURE_V1)
    const lkey = formatVerifierKey('example.org/log', w.publicKey)
    const c = resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_WITNESS_LOGS: lkey }, flags: { witnessUrls: [`https://witness.example/w1/=${wkey}`] } })
    expect(c.tlogWitness).toEqual({ urls: [{ url: 'https://witness.example/w1', vkey: wkey }], logs: [lkey] })
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir } }).tlogWitness).toBeUndefined()
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { witnessUrls: [`https://witness.example=${lkey}`] } })).toThrow(/witnessUrls \(flag\): .*not a cosignature\/v1 key/)
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { witnessUrls: ['https://witness.example'] } })).toThrow(/expected URL=VKEY/)
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { witnessLogs: [wkey] } })).toThrow(/witnessLogs \(flag\): .*not an Ed25519 note key/)
  })

  it('takes a network log origin, and names one that is not a key name', () => {
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir, NEKO_NETWORK_LOG: 'example.org/neko-rebuilder/network-log' } }).networkLog).toBe('example.org/neko-rebuilder/network-log')
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { networkLog: 'has space' } })).toThrow(/networkLog \(flag\): "has space" is not a log origin/)
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { networkLog: 'neko-rebuilder/log/x' } })).toThrow(/not a log origin/)
  })

  it('needs an announce key to watch', () => {
    expect(() => resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { watch: 'https://example.test/r.git' } })).toThrow(/announce-key/)
    const c = resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { watch: 'https://example.test/r.git', announceKey: dir, watchIntervalSeconds: 5 } })
    expect(c.watch).toEqual({ url: 'https://example.test/r.git', announceKeyDir: dir, intervalMs: 5000 })
  })

  it('watches a local repository by its absolute path, which its announcements name; URLs stay as given', () => {
    const flags = { announceKey: dir }
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { ...flags, watch: 'project/repo' } }).watch?.url).toBe(join(process.cwd(), 'project/repo'))
    expect(resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { ...flags, watch: '.' } }).watch?.url).toBe(process.cwd())
    for (const url of ['git@github.com:m1k1o/neko.git', 'file:///srv/neko.git', 'https://github.com/m1k1o/neko']) {
      expect(resolveConfig({ env: { XDG_DATA_HOME: dir }, flags: { ...flags, watch: url } }).watch?.url).toBe(url)
    }
  })

  it('parses HTTP addresses', () => {
    expect(parseHttpAddress('8080')).toEqual({ host: '127.0.0.1', port: 8080 })
    expect(parseHttpAddress(':0')).toEqual({ host: '127.0.0.1', port: 0 })
    expect(parseHttpAddress('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 })
    expect(parseHttpAddress('[::1]:80')).toEqual({ host: '::1', port: 80 })
    expect(parseHttpAddress('host:70000')).toBeUndefined()
    expect(parseHttpAddress('nope')).toBeUndefined()
  })
})
