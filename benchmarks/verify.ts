/**
 * Claims ingested per second through decodeMessage (envelope checks, base64, signature,
 * JSON parse and schema validation) against a bare crypto.verify of the same PAE bytes
 * with the same key, in the same run and for the same count.
 *   npm run bench:verify [-- COUNT]
 */
import './quiet.js'
import { verify } from 'node:crypto'
import { pae, type Envelope } from '../src/protocol/dsse.js'
import { generateIdentity } from '../src/protocol/keys.js'
import { decodeMessage, signClaim } from '../src/protocol/messages.js'
import { sampleClaim } from './claims.js'

const COUNT = Number(process.argv[2] ?? 20_000)
const DISTINCT = 200

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

function rawRun (): number {
  const t = process.cpuUsage()
  for (let i = 0; i < COUNT; i++) {
    const r = raw[i % DISTINCT] as (typeof raw)[number]
    if (!verify(null, r.message, r.key, r.sig)) throw new Error('raw verify failed')
  }
  return cpuSeconds(t)
}

function decodeRun (): number {
  const t = process.cpuUsage()
  for (let i = 0; i < COUNT; i++) {
    const m = decodeMessage(texts[i % DISTINCT], { keys })
    if (m.kind !== 'claim') throw new Error('not a claim')
  }
  return cpuSeconds(t)
}

// Warm up both paths (JIT, ajv, key caches), then alternate rounds so that load from other
// processes hits both alike; the ratio is taken per round and the median reported.
// Rates are per CPU-second.
const ROUNDS = 5
const warm = Math.min(COUNT, 2000)
for (let i = 0; i < warm; i++) decodeMessage(texts[i % DISTINCT], { keys })
rawRun()
const ratios: number[] = []
let rawS = 0
let decS = 0
for (let round = 0; round < ROUNDS; round++) {
  const r = rawRun()
  const d = decodeRun()
  rawS += r
  decS += d
  ratios.push(r / d)
  console.log(`round ${round + 1}: raw ${(COUNT / r).toFixed(0)} /s, decodeMessage ${(COUNT / d).toFixed(0)} /s, ratio ${(r / d).toFixed(3)}`)
}
ratios.sort((a, b) => a - b)
console.log(`claim payload: ${Buffer.from(envelopes[0]?.payload as string, 'base64').byteLength} bytes, envelope ${texts[0]?.length} bytes, ${COUNT} messages per side per round`)
console.log(`raw crypto.verify:  ${(ROUNDS * COUNT / rawS).toFixed(0)} /s`)
console.log(`decodeMessage:      ${(ROUNDS * COUNT / decS).toFixed(0)} /s`)
console.log(`ratio (decodeMessage / raw): ${(rawS / decS).toFixed(3)} overall, ${(ratios[Math.floor(ROUNDS / 2)] as number).toFixed(3)} median of rounds`)
