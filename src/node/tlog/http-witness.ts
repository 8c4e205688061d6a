/**
 * The node as a C2SP tlog-witness over HTTP (`POST /tlog/add-checkpoint`), for the logs its
 * trust policy or configuration names: 404 for any other origin, 403 without a valid signature
 * by a key trusted for it, 409 with the size last cosigned, 422 for a proof that does not
 * prove, 200 with a timestamped cosignature/v1 line. Everything is bounded before work: the
 * body by the route, requests per client before parsing, requests per origin before the proof.
 * The check and the persisted state are the gossip witness's (`Witness.addCheckpoint`), so
 * a log is never cosigned at one size with two roots, whichever way its checkpoints arrive.
 */
import type { KeyObject } from 'node:crypto'
import { keyIdOf } from '../../protocol/keys.js'
import { parseCheckpoint } from '../../protocol/tlog/checkpoint.js'
import { logOrigin } from '../../protocol/tlog/entry.js'
import { ALG_ED25519, openNote, parseNote, parseVerifierKey } from '../../protocol/tlog/note.js'
import { formatTlogSize, parseAddCheckpoint, TLOG_SIZE_CONTENT_TYPE } from '../../protocol/tlog/witness-request.js'
import { componentLog, type ComponentLogger } from '../logger.js'
import { createRateLimiter } from '../rate-limit.js'
import { TlogConfigError } from './errors.js'
import type { Witness } from './witness.js'

export interface HttpWitnessComponents {
  logger?: ComponentLogger
  witness: Pick<Witness, 'addCheckpoint'>
  /** The log keys trusted for `origin`; undefined for an origin this witness does not witness. */
  trustedKeys: (origin: string) => readonly KeyObject[] | undefined
}

export interface HttpWitnessInit {
  /** Requests one client address may make (default 60 a minute, burst 30). */
  perClient?: { perMinute: number, burst: number }
  /** Requests that may name one origin (default 60 a minute, burst 10): C2SP logs push a few hundred a day. */
  perOrigin?: { perMinute: number, burst: number }
}

export interface HttpWitnessAnswer {
  status: number
  contentType: string
  body: string
  /** Why a 409 refused (its body is the size alone, as the spec asks). */
  reason?: string
}

export interface HttpWitness {
  /** Answers one add-checkpoint request body from `client` (its address). */
  addCheckpoint: (body: Uint8Array, client: string) => Promise<HttpWitnessAnswer>
}

const text = (status: number, body: string): HttpWitnessAnswer => ({ status, contentType: 'text/plain; charset=utf-8', body: `${body}\n` })

export function createHttpWitness (components: HttpWitnessComponents, init: HttpWitnessInit = {}): HttpWitness {
  const log = componentLog(components.logger, 'http-witness')
  const perClient = createRateLimiter({ ...(init.perClient ?? { perMinute: 60, burst: 30 }), maxKeys: 4096 })
  const perOrigin = createRateLimiter({ ...(init.perOrigin ?? { perMinute: 60, burst: 10 }), maxKeys: 1024 })

  return {
    async addCheckpoint (body, client) {
      if (!perClient.take(client)) return text(429, 'too many add-checkpoint requests from this address; retry later')
      let req, note, checkpoint
      try {
        req = parseAddCheckpoint(body)
        note = parseNote(req.note)
        checkpoint = parseCheckpoint(note.text)
      } catch (err) {
        return text(400, (err as Error).message)
      }
      const keys = components.trustedKeys(checkpoint.origin)
      if (keys === undefined || keys.length === 0) return text(404, `this witness does not witness the log ${checkpoint.origin.slice(0, 200)}`)
      // Signatures by keys not trusted for the origin are ignored, as the spec asks.
      const key = keys.find(k => { try { openNote(req.note, checkpoint.origin, k); return true } catch { return false } })
      if (key === undefined) return text(403, `no valid signature by a key this witness trusts for ${checkpoint.origin.slice(0, 200)}`)
      if (!perOrigin.take(checkpoint.origin)) return text(429, `too many add-checkpoint requests for ${checkpoint.origin.slice(0, 200)}; retry later`)
      const r = await components.witness.addCheckpoint({ note: req.note, text: note.text, checkpoint, logKeyId: keyIdOf(key) }, req.oldSize, req.proof)
      if (r.status === 200) return { status: 200, contentType: 'text/plain; charset=utf-8', body: r.lines.map(l => `${l}\n`).join('') }
      log.info({ origin: checkpoint.origin, client, status: r.status, reason: r.reason }, 'add-checkpoint refused')
      if (r.status === 409) return { status: 409, contentType: TLOG_SIZE_CONTENT_TYPE, body: formatTlogSize(r.size), reason: r.reason }
      return text(r.status, r.reason)
    }
  }
}

/**
 * The logs a node witnesses over HTTP: each policy builder's own log (origin named after its
 * key id, signed with its key) but this node's, and each log named by an Ed25519 note verifier
 * key in the configuration (any origin, e.g. a network log). Throws TlogConfigError for a bad key.
 */
export function witnessedLogKeys (builderKeys: ReadonlyMap<string, KeyObject>, vkeys: readonly string[], ownKeyId?: string): (origin: string) => KeyObject[] | undefined {
  const byOrigin = new Map<string, KeyObject[]>()
  const add = (origin: string, key: KeyObject): void => { byOrigin.set(origin, [...(byOrigin.get(origin) ?? []), key]) }
  for (const [keyId, key] of builderKeys) if (keyId !== ownKeyId) add(logOrigin(keyId), key)
  for (const vkey of vkeys) {
    let v
    try {
      v = parseVerifierKey(vkey)
    } catch (err) {
      throw new TlogConfigError(`witnessed log key ${JSON.stringify(vkey.slice(0, 120))}: ${(err as Error).message}`)
    }
    if (v.alg !== ALG_ED25519) throw new TlogConfigError(`witnessed log key ${v.name.slice(0, 120)} is not an Ed25519 note key (algorithm 0x01)`)
    add(v.name, v.publicKey)
  }
  return origin => byOrigin.get(origin)
}
