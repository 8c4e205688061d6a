/**
 * Claims ingested per second (parse, validate, verify signature) against a bare
 * crypto.verify of the same PAE bytes with the same key, in the same run and for the same
 * count: the target is that ratio. Nodes check signatures through libsodium
 * (src/protocol/ed25519.ts), so a bare check through it is timed as a second baseline: the
 * ratio against it is what parsing and validation cost on top of the signature check.
 * The ingest paths:
 *  - decodeMessage, one message at a time (gossip);
 *  - decodeMessages, in batches of BATCH (bundles, feeds);
 *  - decodeMessage plus the envelope id a node's store keys each message by;
 *  - a floor that no JSON-based ingest can go under: both JSON.parse calls, base64 and the
 *    signature (through libsodium), without a single check. It shows how much of the cost
 *    is the runtime's JSON parser rather than validation.
 *   npm run bench:verify [-- COUNT]
 */
import { verify } from 'node:crypto'
import { pae, type Envelope } from '../src/protocol/dsse.js'
import { verifyEd25519 } from '../src/protocol/ed25519.js'
import { generateIdentity } from '../src/protocol/keys.js'
import { decodeMessage, decodeMessages, signClaim } from '../src/protocol/messages.js'
import { sampleClaim } from './claims.js'

const COUNT = Number(process.argv[2] ?? 20_480)
const DISTINCT = 256
const BATCH = 256
const TARGET = 0.8

const builders = [generateIdentity(), generateIdentity(), generateIdentity()]
const keys = new Map(builders.map(b => [b.keyId, b.publicKey]))

// Messages arrive as JSON text off the wire; both sides start from bytes already in memory.
const envelopes: Envelope[] = Array.from({ length: DISTINCT }, (_, i) => signClaim(sampleClaim(i), builders[i % builders.length] as (typeof builders)[number]))
const texts = envelopes.map(e => JSON.stringify(e))
const raw = envelopes.map(e => ({
  message: pae(e.payloadType, Buffer.from(e.payload, 'base64')),
  sig: Buffer.from(e.signatures[0]?.sig as string, 'base64'),
  key: keys.get(e.signatures[0]?.keyid as string) as NonNullable<ReturnType<typeof keys.get>>
}))

// CPU time of this process, not wall time: the ratio then holds on a busy machine too.
function cpuSeconds (since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since)
  return (u.user + u.system) / 1e6
}

function timed (body: () => void): number {
  const t = process.cpuUsage()
  body()
  return cpuSeconds(t)
}

const paths: Record<string, () => void> = {
  'raw crypto.verify': () => {
    for (let i = 0; i < COUNT; i++) {
      const r = raw[i % DISTINCT] as (typeof raw)[number]
      if (!verify(null, r.message, r.key, r.sig)) throw new Error('raw verify failed')
    }
  },
  'raw libsodium verify': () => {
    for (let i = 0; i < COUNT; i++) {
      const r = raw[i % DISTINCT] as (typeof raw)[number]
      if (!verifyEd25519(r.message, r.sig, r.key)) throw new Error('raw libsodium verify failed')
    }
  },
  decodeMessage: () => {
    for (let i = 0; i < COUNT; i++) {
      if (decodeMessage(texts[i % DISTINCT], { keys }).kind !== 'claim') throw new Error('not a claim')
    }
  },
  [`decodeMessages (batches of ${BATCH})`]: () => {
    for (let i = 0; i < COUNT; i += BATCH) {
      for (const r of decodeMessages(texts.slice(i % DISTINCT, i % DISTINCT + BATCH), { keys })) if (!r.ok) throw r.error
    }
  },
  'floor (parse + verify, no checks)': () => {
    for (let i = 0; i < COUNT; i++) {
      const e = JSON.parse(texts[i % DISTINCT] as string) as Envelope
      const payload = Buffer.from(e.payload, 'base64')
      const s = e.signatures[0] as Envelope['signatures'][number]
      if (!verifyEd25519(pae(e.payloadType, payload), Buffer.from(s.sig, 'base64'), keys.get(s.keyid ?? '') as NonNullable<ReturnType<typeof keys.get>>)) throw new Error('floor verify failed')
      JSON.parse(payload.toString('utf8'))
    }
  },
  'decodeMessage + envelope id': () => {
    for (let i = 0; i < COUNT; i++) {
      if (decodeMessage(texts[i % DISTINCT], { keys }).id.length !== 64) throw new Error('bad id')
    }
  }
}

// Warm up every path (JIT, ajv, key caches), then alternate rounds so that load from other
// processes hits all alike; the ratio is taken per round and the median reported.
const ROUNDS = 5
for (const run of Object.values(paths)) run()
const seconds: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map(k => [k, []]))
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(paths)) seconds[name]?.push(timed(run))
}

const rawName = 'raw crypto.verify'
const sodiumName = 'raw libsodium verify'
const rawRounds = seconds[rawName] as number[]
const sodiumRounds = seconds[sodiumName] as number[]
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
console.log(`claim payload: ${Buffer.from(envelopes[0]?.payload as string, 'base64').byteLength} bytes, envelope ${texts[0]?.length} bytes; ${COUNT} messages per path per round, ${ROUNDS} rounds; rates per CPU-second`)
console.log(`ratios: against ${rawName} (the target, median of rounds, and overall), and against ${sodiumName} (the check nodes use)`)
const results: Record<string, { perSecond: number, ratio: number, medianRatio: number, ratioToLibsodium: number }> = {}
for (const [name, s] of Object.entries(seconds)) {
  const perSecond = ROUNDS * COUNT / sum(s)
  const ratio = sum(rawRounds) / sum(s)
  const medianRatio = median(s.map((x, i) => (rawRounds[i] as number) / x))
  const ratioToLibsodium = median(s.map((x, i) => (sodiumRounds[i] as number) / x))
  results[name] = { perSecond, ratio, medianRatio, ratioToLibsodium }
  const vs = name === rawName
    ? ''
    : `  ratio ${medianRatio.toFixed(3)} (${ratio.toFixed(3)} overall)${medianRatio >= TARGET ? '' : ` below ${TARGET}`}; to libsodium ${ratioToLibsodium.toFixed(3)}`
  console.log(`${name.padEnd(34)} ${perSecond.toFixed(0).padStart(6)} /s${vs}`)
}
const met = Object.entries(results).every(([name, r]) => name.startsWith('raw ') || name.startsWith('floor') || r.medianRatio >= TARGET)
console.log(`target: every ingest path >= ${TARGET} x ${rawName}: ${met ? 'yes' : 'NO'}`)
console.log(JSON.stringify({ bench: 'verify', count: COUNT, rounds: ROUNDS, target: TARGET, met, results }))
