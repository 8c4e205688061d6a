/**
 * Pushes a log's checkpoints to C2SP tlog-witness HTTP witnesses (`join --witness-url`): each
 * new checkpoint, at most once per `minIntervalMs` per witness (public witnesses take a few
 * hundred a day per log), goes as `add-checkpoint` with an RFC 6962 proof from the size the
 * witness last cosigned. That size starts unknown (0): a 409 names it and the request is sent
 * once more from there. Each cosignature that comes back is checked with the witness's key
 * and kept with the checkpoint, so it is served and counted like a node witness's.
 */
import { checkCosignature } from '../../protocol/tlog/cosignature.js'
import { parseCheckpoint } from '../../protocol/tlog/checkpoint.js'
import { ALG_COSIGNATURE_V1, formatNote, parseNote, parseVerifierKey, type VerifierKey } from '../../protocol/tlog/note.js'
import { ADD_CHECKPOINT_LIMITS, ADD_CHECKPOINT_PATH, formatAddCheckpoint, parseCosignatureLines, parseTlogSize } from '../../protocol/tlog/witness-request.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { TlogConfigError } from './errors.js'
import type { TransparencyLog } from './types.js'

export interface WitnessPushComponents {
  logger?: ComponentLogger
  log: Pick<TransparencyLog, 'origin' | 'checkpoint' | 'consistency' | 'addCosignatures' | 'onCheckpoint'>
}

export interface HttpWitnessTarget {
  /** The witness's submission prefix: `add-checkpoint` is posted under it. */
  url: string
  /** Its cosignature/v1 verifier key, `<name>+<hash>+<base64(0x04 || key)>`. */
  vkey: string
}

export interface WitnessPushInit {
  witnesses: HttpWitnessTarget[]
  /** Least time between two pushes to one witness (ms, default 60 s); the newest checkpoint waits. */
  minIntervalMs?: number
  /** Whole request, connect to last byte (ms, default 10 s). */
  timeoutMs?: number
}

export interface WitnessPushStatus {
  url: string
  name: string
  /** The size this witness last cosigned, as far as this node knows. */
  cosignedSize: number
  pushed: number
  lastError?: string
}

export interface WitnessPusher {
  start: () => void
  stop: () => Promise<void>
  /** Pushes the log's latest checkpoint to every witness now, ignoring the interval (tests, shutdown). */
  pushNow: () => Promise<void>
  status: () => WitnessPushStatus[]
}

interface Target extends HttpWitnessTarget {
  key: VerifierKey
  cosignedSize: number
  pushed: number
  lastAt: number
  lastError?: string
  busy?: Promise<void>
}

/** Checks each `--witness-url` target; throws TlogConfigError naming the bad one. */
export function parseWitnessTargets (targets: readonly HttpWitnessTarget[]): Array<HttpWitnessTarget & { key: VerifierKey }> {
  return targets.map(t => {
    let url: URL
    try {
      url = new URL(t.url)
    } catch {
      throw new TlogConfigError(`witness URL ${JSON.stringify(t.url.slice(0, 200))} is not a URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TlogConfigError(`witness URL ${t.url.slice(0, 200)} is not http or https`)
    let key: VerifierKey
    try {
      key = parseVerifierKey(t.vkey)
    } catch (err) {
      throw new TlogConfigError(`witness key for ${t.url.slice(0, 200)}: ${(err as Error).message}`)
    }
    if (key.alg !== ALG_COSIGNATURE_V1) throw new TlogConfigError(`witness key for ${t.url.slice(0, 200)} is not a cosignature/v1 key (algorithm 0x04)`)
    return { url: t.url.replace(/\/+$/, ''), vkey: t.vkey, key }
  })
}

/** Reads at most `max` bytes of a response body. */
async function boundedText (res: Response, max: number): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).byteLength
    if (size > max) throw new Error(`the answer has more than ${max} bytes`)
    chunks.push(chunk as Uint8Array)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export function createWitnessPusher (components: WitnessPushComponents, init: WitnessPushInit): WitnessPusher {
  const log = componentLog(components.logger, 'witness-push')
  const own = components.log
  const minIntervalMs = init.minIntervalMs ?? 60_000
  const timeoutMs = init.timeoutMs ?? 10_000
  const targets: Target[] = parseWitnessTargets(init.witnesses).map(t => ({ ...t, cosignedSize: 0, pushed: 0, lastAt: 0 }))
  let running = false
  let timer: NodeJS.Timeout | undefined

  /** One add-checkpoint; returns the size a 409 names, or undefined when done. */
  async function post (t: Target, note: string, text: string, size: number, oldSize: number): Promise<number | undefined> {
    const proof = oldSize > 0 && oldSize < size ? await own.consistency(oldSize, size) : []
    const res = await fetch(`${t.url}${ADD_CHECKPOINT_PATH}`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
      body: formatAddCheckpoint(oldSize, proof, note).toString('utf8'),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const body = await boundedText(res, ADD_CHECKPOINT_LIMITS.maxResponseBytes)
    if (res.status === 409) {
      const named = parseTlogSize(body)
      if (named === undefined) throw new Error(`409 without a size: ${body.slice(0, 200)}`)
      return named
    }
    if (res.status !== 200) throw new Error(`${res.status}: ${body.trim().slice(0, 300)}`)
    // Only this witness's valid cosignatures are kept; anything else in the answer is ignored.
    const lines = parseCosignatureLines(text, body).filter(s => checkCosignature(text, s, t.key.name, t.key.publicKey) !== undefined).map(s => s.line)
    if (lines.length === 0) throw new Error('the answer holds no valid cosignature by the witness\'s key')
    // The witness has cosigned this size whatever happens to keeping its line here.
    t.cosignedSize = size
    t.pushed++
    await own.addCosignatures(text, lines)
    return undefined
  }

  async function push (t: Target): Promise<void> {
    const latest = own.checkpoint()
    if (latest === undefined) return
    const parsed = parseNote(latest)
    const size = parseCheckpoint(parsed.text).size
    if (size <= t.cosignedSize && t.pushed > 0) return
    const line = parsed.signatures.find(s => s.name === own.origin)?.line
    if (line === undefined) return
    // The log's signature alone: the witness ignores the others anyway.
    const note = formatNote(parsed.text, [line])
    t.lastAt = Date.now()
    try {
      const named = await post(t, note, parsed.text, size, t.cosignedSize)
      if (named !== undefined) {
        if (named > size) throw new Error(`the witness has cosigned size ${named}, beyond this log's ${size}`)
        t.cosignedSize = named
        const again = await post(t, note, parsed.text, size, named)
        if (again !== undefined) throw new Error(`409 twice (sizes ${named}, then ${again})`)
      }
      if (t.lastError !== undefined) log.info({ witness: t.url, size }, 'the witness cosigns again')
      delete t.lastError
    } catch (err) {
      const message = (err as Error).message.slice(0, 300)
      if (t.lastError !== message) log.warn({ witness: t.url, size, err: message }, 'pushing a checkpoint to a witness failed')
      t.lastError = message
    }
  }

  function due (force: boolean): Promise<void> {
    const now = Date.now()
    return Promise.all(targets.map(async t => {
      if (t.busy !== undefined || (!force && now - t.lastAt < minIntervalMs)) return
      t.busy = push(t).finally(() => { delete t.busy })
      await t.busy
    })).then(() => {})
  }

  return {
    start () {
      if (running || targets.length === 0) return
      running = true
      own.onCheckpoint(() => { if (running) void due(false) })
      // The newest checkpoint that waited out the interval goes at the next tick.
      timer = setInterval(() => { void due(false) }, Math.max(50, Math.min(minIntervalMs, 60_000) / 2))
      timer.unref()
      void due(true)
    },
    async stop () {
      running = false
      clearInterval(timer)
      await Promise.all(targets.map(async t => await t.busy))
    },
    async pushNow () {
      await Promise.all(targets.map(async t => await t.busy))
      await due(true)
    },
    status: () => targets.map(t => ({ url: t.url, name: t.key.name, cosignedSize: t.cosignedSize, pushed: t.pushed, ...(t.lastError !== undefined ? { lastError: t.lastError } : {}) }))
  }
}
